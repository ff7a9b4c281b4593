package dev.ipseccni.ipam;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

/**
 * An {@link IpamNode} in its own JVM, started from the test classpath (optionally inside a
 * network namespace). Its PID is recorded so a later run can kill what a crashed run left.
 */
final class ChildNode implements AutoCloseable {
  static final Path PID_FILE = Path.of(System.getProperty("java.io.tmpdir"), "ipt-ipam-children.pids");
  private final String name;
  private final Process process;
  private final PrintWriter stdin;
  private final List<String> lines = new CopyOnWriteArrayList<>();
  private final Thread reader;

  private ChildNode(String name, Process process) {
    this.name = name;
    this.process = process;
    this.stdin = new PrintWriter(process.getOutputStream(), true, StandardCharsets.UTF_8);
    reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(),
          StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          lines.add(line);
        }
      } catch (IOException ignored) {
        // the child died; its lines so far stay readable
      }
    }, "ipt-reader-" + name);
    reader.setDaemon(true);
    reader.start();
  }

  static ChildNode start(String name, List<String> launcherPrefix, Path logDir, String... args) throws IOException {
    return start(IpamNode.class, name, launcherPrefix, logDir, args);
  }

  /** A child running {@code mainClass} (IpamNode or another line-command member of the tests). */
  static ChildNode start(Class<?> mainClass, String name, List<String> launcherPrefix, Path logDir, String... args)
      throws IOException {
    return start(mainClass, name, launcherPrefix, List.of(), logDir, args);
  }

  /** The same, with extra JVM options (system properties Hazelcast reads, say). */
  static ChildNode start(Class<?> mainClass, String name, List<String> launcherPrefix, List<String> jvmOptions,
      Path logDir, String... args) throws IOException {
    List<String> cmd = new ArrayList<>(launcherPrefix);
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx256m");
    cmd.add("-XX:+UseSerialGC");
    cmd.addAll(jvmOptions);
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(mainClass.getName());
    cmd.addAll(List.of(args));
    Files.createDirectories(logDir);
    Process p = new ProcessBuilder(cmd)
        .redirectError(ProcessBuilder.Redirect.appendTo(logDir.resolve(name + ".log").toFile()))
        .start();
    Files.writeString(PID_FILE, p.pid() + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    return new ChildNode(name, p);
  }

  /** Kills (SIGKILL) children left by an earlier, crashed run: only our own main class, by PID. */
  static void killLeftovers() throws IOException {
    if (!Files.exists(PID_FILE)) {
      return;
    }
    for (String pid : Files.readAllLines(PID_FILE)) {
      if (pid.isBlank()) {
        continue;
      }
      ProcessHandle.of(Long.parseLong(pid.trim())).ifPresent(h -> {
        String cmdline = h.info().commandLine().orElse("");
        if (cmdline.contains(IpamNode.class.getName()) || cmdline.contains(LeaseMapMember.class.getName())) {
          h.destroyForcibly();
        }
      });
    }
    Files.delete(PID_FILE);
  }

  long pid() {
    return process.pid();
  }

  void send(String command) {
    stdin.println(command);
  }

  List<String> lines() {
    return lines;
  }

  /** Waits for a line after position {@code from}; returns it. */
  String await(Predicate<String> match, int from, Duration timeout) {
    String[] found = new String[1];
    Poll.until(name + " line", timeout, () -> {
      for (int i = from; i < lines.size(); i++) {
        if (match.test(lines.get(i))) {
          found[0] = lines.get(i);
          return true;
        }
      }
      if (!process.isAlive()) {
        throw new AssertionError(name + " died; last lines: " + tail());
      }
      return false;
    }, this::tail);
    return found[0];
  }

  String await(String prefix, Duration timeout) {
    return await(l -> l.startsWith(prefix), 0, timeout);
  }

  /** Sends a command and returns the first answer line starting with {@code answerPrefix}. */
  String ask(String command, String answerPrefix) {
    int from = lines.size();
    send(command);
    return await(l -> l.startsWith(answerPrefix), from, Duration.ofSeconds(60));
  }

  /** Sends a command and returns every line after it up to the {@code DONE} line. */
  List<String> askAll(String command, String done) {
    int from = lines.size();
    send(command);
    await(l -> l.equals(done), from, Duration.ofSeconds(60));
    List<String> out = new ArrayList<>();
    for (int i = from; i < lines.size() && !lines.get(i).equals(done); i++) {
      out.add(lines.get(i));
    }
    return out;
  }

  String tail() {
    int n = lines.size();
    return String.join("\n", lines.subList(Math.max(0, n - 15), n));
  }

  /**
   * SIGKILL, then every line the child wrote before it died: the reader has reached the
   * end of the pipe when this returns, so a line written just before the kill (a release
   * sent, say) is never missing from {@link #lines}.
   */
  void kill9() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor();
    reader.join(Duration.ofSeconds(30).toMillis());
    if (reader.isAlive()) {
      throw new AssertionError("the output of child " + name + " did not end within 30 s of its death");
    }
  }

  @Override
  public void close() throws InterruptedException {
    if (process.isAlive()) {
      kill9();
    }
  }
}

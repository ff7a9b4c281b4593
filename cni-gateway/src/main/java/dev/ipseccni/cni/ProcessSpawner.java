package dev.ipseccni.cni;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs the gateway's commands (the bridge plugin, ip, nsenter) through
 * {@code ipsec-cni-spawner}: a small static process started once, which posix_spawn()s
 * each command and answers with its exit status, stdout and stderr ({@link SpawnerProtocol}).
 * A fork from the agent's JVM costs some 5 ms more than one from a small process, and
 * every pod's ADD and DEL waits for one.
 *
 * <p>The spawner ships inside this jar and is written at its first command into a private
 * directory (0700), by default {@code spawner/} beside the CNI socket (the agent's state
 * directory). It is started at the first command and again at the first command after it
 * died; the callers in flight when it died get an IO_FAILURE. When it cannot be written
 * or started at all, one warning is logged and every command runs with ProcessBuilder.
 *
 * <p>Either way a command gets the agent's environment without its CNI_* variables, plus
 * the given ones. Every method blocks: call them from a worker, never the event loop.
 */
public final class ProcessSpawner implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(ProcessSpawner.class.getName());

  static final String BINARY = "ipsec-cni-spawner";
  private static final Duration START_TIMEOUT = Duration.ofSeconds(5);
  /** How long a timed-out command's answer is awaited after its kill. */
  private static final Duration KILL_GRACE = Duration.ofSeconds(2);
  /** How long the spawner has to kill its children and exit after its stdin closed. */
  private static final Duration CLOSE_GRACE = Duration.ofSeconds(2);

  private final Callable<Path> install;
  private final Map<String, String> agentEnvironment;
  private final AtomicLong ids = new AtomicLong();
  private SpawnerProcess current; // guarded by this
  private boolean direct; // guarded by this: the spawner could not be started, commands run from the JVM
  private boolean closed; // guarded by this

  /**
   * @param install writes (or finds) the spawner binary and says where it is; throws when there is none
   * @param agentEnvironment the environment every command starts from, CNI_* variables excluded here
   */
  ProcessSpawner(Callable<Path> install, Map<String, String> agentEnvironment) {
    this(install, agentEnvironment, false);
  }

  private ProcessSpawner(Callable<Path> install, Map<String, String> agentEnvironment, boolean direct) {
    this.install = install;
    Map<String, String> env = new LinkedHashMap<>(agentEnvironment);
    env.keySet().removeIf(k -> k.startsWith("CNI_"));
    this.agentEnvironment = Map.copyOf(env);
    this.direct = direct;
  }

  /** The spawner shipped in this jar, written into {@code dir} (created 0700) when it is first started. */
  public static ProcessSpawner extractedInto(Path dir) {
    return new ProcessSpawner(() -> extract(dir), System.getenv());
  }

  /** Without a spawner: every command runs with ProcessBuilder, forked from the JVM. */
  public static ProcessSpawner direct() {
    return new ProcessSpawner(() -> {
      throw new IllegalStateException("runs without a spawner");
    }, System.getenv(), true);
  }

  /**
   * Runs argv with the agent's environment (CNI_* removed) plus env, stdin written to it.
   * Its exit code is 128 + N when signal N ended it, as ProcessBuilder reports it.
   *
   * @throws CniError DATAPATH_FAILED when it did not finish in time (it and its process
   *     group are then killed); IO_FAILURE when it could not be started, or the spawner
   *     died while it ran (its outcome is then unknown)
   */
  public BridgeDelegate.Outcome run(List<String> argv, Map<String, String> env, String stdin, Duration timeout) {
    if (argv.isEmpty()) {
      throw new IllegalArgumentException("no command");
    }
    Map<String, String> childEnv = new LinkedHashMap<>(agentEnvironment);
    childEnv.putAll(env);
    if (hasNul(argv) || hasNul(childEnv.keySet()) || hasNul(childEnv.values())) {
      throw new CniError(CniError.IO_FAILURE, "cannot run " + String.join(" ", argv),
          "a NUL character in its arguments or environment");
    }
    SpawnerProcess spawner = spawner();
    if (spawner == null) {
      return runDirectly(argv, childEnv, stdin, timeout);
    }
    List<String> environment = new ArrayList<>(childEnv.size());
    childEnv.forEach((name, value) -> environment.add(name + "=" + value));
    long id = ids.incrementAndGet();
    byte[] frame = SpawnerProtocol.run(id, argv, environment, stdin.getBytes(StandardCharsets.UTF_8));
    CompletableFuture<SpawnerProtocol.Answer> answer = spawner.send(id, frame);
    try {
      return outcome(argv, answer.get(timeout.toNanos(), TimeUnit.NANOSECONDS));
    } catch (TimeoutException e) {
      spawner.send(SpawnerProtocol.kill(id));
      try {
        answer.get(KILL_GRACE.toMillis(), TimeUnit.MILLISECONDS);
      } catch (TimeoutException | ExecutionException stillUnknown) {
        // the timeout is the news
      } catch (InterruptedException interrupted) {
        Thread.currentThread().interrupt();
      }
      throw new CniError(CniError.DATAPATH_FAILED, last(argv) + " did not finish in " + describe(timeout));
    } catch (ExecutionException e) {
      throw spawner.lost(argv);
    } catch (InterruptedException e) {
      spawner.send(SpawnerProtocol.kill(id));
      Thread.currentThread().interrupt();
      throw new CniError(CniError.INTERNAL, "interrupted while running " + last(argv));
    } finally {
      spawner.waiting.remove(id);
    }
  }

  private static BridgeDelegate.Outcome outcome(List<String> argv, SpawnerProtocol.Answer answer) {
    return switch (answer.type()) {
      case SpawnerProtocol.EXITED -> new BridgeDelegate.Outcome(answer.value(), answer.text(0), answer.text(1));
      case SpawnerProtocol.SIGNALED -> new BridgeDelegate.Outcome(128 + answer.value(), answer.text(0), answer.text(1));
      case SpawnerProtocol.FAILED -> throw new CniError(CniError.IO_FAILURE, "cannot run " + String.join(" ", argv),
          answer.text(0) + " (errno " + answer.value() + ")");
      default -> throw new CniError(CniError.INTERNAL, BINARY + " answered " + last(argv) + " with frame type "
          + answer.type());
    };
  }

  /** The process id of the running spawner, if one runs. */
  synchronized OptionalLong pid() {
    return current == null || current.gone ? OptionalLong.empty() : OptionalLong.of(current.process.pid());
  }

  /**
   * Stops the spawner: its stdin closes, so it kills the process group of every command
   * still running and exits; if it has not within two seconds, it is killed by pid.
   * Commands still waiting fail; later ones run with ProcessBuilder.
   */
  @Override
  public void close() {
    SpawnerProcess spawner;
    synchronized (this) {
      closed = true;
      spawner = current;
      current = null;
    }
    if (spawner != null) {
      spawner.stop();
    }
  }

  private synchronized SpawnerProcess spawner() {
    if (closed || direct) {
      return null;
    }
    if (current != null && !current.gone) {
      return current;
    }
    current = null;
    try {
      Path binary = install.call();
      current = start(binary);
      LOG.log(System.Logger.Level.INFO, "{0} (pid {1}) runs the gateway''s commands, from {2}", BINARY,
          Long.toString(current.process.pid()), binary);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CniError(CniError.INTERNAL, "interrupted while starting " + BINARY);
    } catch (Exception e) {
      direct = true;
      LOG.log(System.Logger.Level.WARNING, "cannot start " + BINARY + " (" + e.getMessage() + "): commands run "
          + "from the JVM instead, each fork a few milliseconds slower");
      return null;
    }
    return current;
  }

  /**
   * Starts a spawner and waits for its READY. It is started from a thread of its own, the
   * one that then reads its answers and lives exactly as long as it: the spawner's
   * parent-death signal fires when the thread that forked it ends, not the JVM.
   */
  private SpawnerProcess start(Path binary) throws IOException, InterruptedException {
    CompletableFuture<Process> launched = new CompletableFuture<>();
    CompletableFuture<SpawnerProcess> started = new CompletableFuture<>();
    Thread reader = new Thread(() -> serve(binary, launched, started), BINARY);
    reader.setDaemon(true);
    reader.start();
    try {
      return started.get(START_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
    } catch (TimeoutException e) {
      abandon(launched, started);
      throw new IOException(binary + " did not say READY in " + describe(START_TIMEOUT));
    } catch (InterruptedException e) {
      abandon(launched, started);
      throw e;
    }
  }

  /** A start given up: the process, if there is one, is killed; its reader then sees the end and leaves. */
  private static void abandon(CompletableFuture<Process> launched, CompletableFuture<SpawnerProcess> started) {
    started.completeExceptionally(new IOException("start abandoned"));
    Process process = launched.getNow(null);
    if (process != null) {
      process.destroyForcibly();
    }
  }

  private void serve(Path binary, CompletableFuture<Process> launched, CompletableFuture<SpawnerProcess> started) {
    Process process;
    try {
      process = new ProcessBuilder(binary.toString(), Long.toString(ProcessHandle.current().pid()))
          .redirectError(ProcessBuilder.Redirect.INHERIT)
          .start();
    } catch (IOException | RuntimeException e) {
      started.completeExceptionally(e);
      return;
    }
    launched.complete(process);
    if (started.isDone()) {
      process.destroyForcibly(); // start() gave up before it could see this process
      return;
    }
    SpawnerProcess spawner = new SpawnerProcess(process);
    DataInputStream answers = new DataInputStream(new BufferedInputStream(process.getInputStream(), 1 << 16));
    boolean serving = false;
    try {
      SpawnerProtocol.Answer ready = SpawnerProtocol.read(answers);
      if (ready.type() != SpawnerProtocol.READY || ready.value() != SpawnerProtocol.VERSION) {
        throw new IOException(binary + " speaks frame type " + ready.type() + ", version " + ready.value()
            + ", not READY version " + SpawnerProtocol.VERSION);
      }
      serving = started.complete(spawner);
      if (!serving) {
        process.destroyForcibly(); // READY came after start() gave up
        return;
      }
      while (true) {
        SpawnerProtocol.Answer answer = SpawnerProtocol.read(answers);
        CompletableFuture<SpawnerProtocol.Answer> waiting = spawner.waiting.remove(answer.id());
        if (waiting != null) {
          waiting.complete(answer);
        }
      }
    } catch (IOException | RuntimeException e) {
      if (!serving) {
        process.destroyForcibly();
        started.completeExceptionally(new IOException(binary + " ended before READY: " + e, e));
        return;
      }
      spawner.ended(e instanceof IOException io ? io : new IOException(e));
    }
  }

  /** One spawner process: its request pipe and the commands waiting for their answer. */
  private final class SpawnerProcess {
    final Process process;
    final Map<Long, CompletableFuture<SpawnerProtocol.Answer>> waiting = new ConcurrentHashMap<>();
    private final OutputStream requests;
    /** Set once its answers can no longer come; a request registered after it is failed by its sender. */
    volatile boolean gone;
    private volatile boolean stopping;
    private volatile String ending = "";

    SpawnerProcess(Process process) {
      this.process = process;
      this.requests = process.getOutputStream();
    }

    CompletableFuture<SpawnerProtocol.Answer> send(long id, byte[] frame) {
      CompletableFuture<SpawnerProtocol.Answer> answer = new CompletableFuture<>();
      waiting.put(id, answer);
      if (gone) {
        answer.completeExceptionally(new IOException(ending));
        return answer;
      }
      send(frame);
      return answer;
    }

    void send(byte[] frame) {
      synchronized (requests) {
        try {
          requests.write(frame);
          requests.flush();
        } catch (IOException e) {
          // It is going: its reader sees the end and fails every waiting command.
        }
      }
    }

    /** The error of a command whose answer will not come. */
    CniError lost(List<String> argv) {
      return new CniError(CniError.IO_FAILURE, BINARY + " (pid " + process.pid() + ") " + (stopping ? "was stopped"
          : "died") + " while running " + last(argv) + ": the command's outcome is unknown", ending);
    }

    /** Its answers ended: every waiting command fails, and the next command starts a new spawner. */
    void ended(IOException cause) {
      if (!(cause instanceof EOFException)) {
        // A frame that cannot be read: nothing after it can be either. Without stdin it kills its children and exits.
        closeRequests();
      }
      String status = awaitExit();
      ending = status.isEmpty() ? "its stdout closed: " + cause : status;
      gone = true;
      for (Long id : List.copyOf(waiting.keySet())) {
        CompletableFuture<SpawnerProtocol.Answer> answer = waiting.remove(id);
        if (answer != null) {
          answer.completeExceptionally(new IOException(ending));
        }
      }
      if (!stopping) {
        LOG.log(System.Logger.Level.WARNING, BINARY + " (pid " + process.pid() + ") died (" + ending
            + "); the commands it was running failed, the next command starts a new one");
      }
      synchronized (ProcessSpawner.this) {
        if (current == this) {
          current = null;
        }
      }
    }

    void stop() {
      stopping = true;
      closeRequests();
      awaitExit();
    }

    private void closeRequests() {
      synchronized (requests) {
        try {
          requests.close();
        } catch (IOException e) {
          // already gone
        }
      }
    }

    /** "exit status N" once it has exited; it is killed by pid when it has not within the grace. */
    private String awaitExit() {
      try {
        if (!process.waitFor(CLOSE_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
          LOG.log(System.Logger.Level.WARNING, BINARY + " (pid " + process.pid() + ") did not exit in "
              + describe(CLOSE_GRACE) + "; killing it");
          process.destroyForcibly();
          process.waitFor(CLOSE_GRACE.toMillis(), TimeUnit.MILLISECONDS);
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
      return process.isAlive() ? "" : "exit status " + process.exitValue();
    }
  }

  /**
   * ProcessBuilder, as the gateway ran every command before the spawner, with the
   * spawner's rules: the command runs in a process group of its own (through setsid(1));
   * stdin is written, and stdout and stderr read, each by a thread of its own, so no pipe
   * can fill and block the command; the timeout counts from the start; a command still
   * running at the timeout is killed with its whole process group, grandchildren that
   * hold its pipes included. Once it has exited, a grandchild that keeps its pipes open
   * delays the answer by {@link #DRAIN} at most.
   */
  static BridgeDelegate.Outcome runDirectly(List<String> argv, Map<String, String> env, String stdin,
                                            Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    Path executable = executable(argv.get(0), env.getOrDefault("PATH", ""));
    List<String> command = new ArrayList<>();
    SETSID.ifPresent(setsid -> command.add(setsid.toString()));
    command.add(executable.toString());
    command.addAll(argv.subList(1, argv.size()));
    ProcessBuilder pb = new ProcessBuilder(command);
    pb.environment().clear();
    pb.environment().putAll(env);
    Process process;
    try {
      process = pb.start();
    } catch (IOException e) {
      throw new CniError(CniError.IO_FAILURE, "cannot run " + String.join(" ", argv), e.getMessage());
    }
    Drain out = new Drain(process.getInputStream(), last(argv) + " stdout");
    Drain err = new Drain(process.getErrorStream(), last(argv) + " stderr");
    Thread feeder = new Thread(() -> {
      try (OutputStream in = process.getOutputStream()) {
        in.write(stdin.getBytes(StandardCharsets.UTF_8));
      } catch (IOException closedEarly) {
        // the command closed its stdin or ended: what it did not read, it did not want
      }
    }, last(argv) + " stdin");
    feeder.setDaemon(true);
    feeder.start();
    try {
      if (!process.waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
        killGroup(process);
        throw new CniError(CniError.DATAPATH_FAILED, last(argv) + " did not finish in " + describe(timeout));
      }
      long drainUntil = System.nanoTime() + DRAIN.toNanos();
      out.awaitEnd(drainUntil);
      err.awaitEnd(drainUntil);
      return new BridgeDelegate.Outcome(process.exitValue(), out.text(), err.text());
    } catch (InterruptedException e) {
      killGroup(process);
      Thread.currentThread().interrupt();
      throw new CniError(CniError.INTERNAL, "interrupted while running " + last(argv));
    }
  }

  /** As long as the spawner's DRAIN_MS: a grandchild holding the pipes of an exited command delays its answer this much. */
  static final Duration DRAIN = Duration.ofMillis(250);

  /** setsid(1) (util-linux, essential on Debian); without it a timed-out command is killed with its descendants. */
  private static final java.util.Optional<Path> SETSID = java.util.stream.Stream.of("/usr/bin/setsid", "/bin/setsid")
      .map(Path::of).filter(Files::isExecutable).findFirst();

  /** argv[0] found as execvp(3) would find it, so that a missing command is an IO_FAILURE and not setsid's 127. */
  private static Path executable(String name, String path) {
    if (name.contains("/")) {
      if (Files.isExecutable(Path.of(name)) && !Files.isDirectory(Path.of(name))) {
        return Path.of(name);
      }
    } else {
      for (String dir : path.split(":")) {
        Path candidate = Path.of(dir.isEmpty() ? "." : dir, name);
        if (Files.isExecutable(candidate) && !Files.isDirectory(candidate)) {
          return candidate;
        }
      }
    }
    throw new CniError(CniError.IO_FAILURE, "cannot run " + name,
        name + ": no such executable" + (name.contains("/") ? "" : " in PATH " + path));
  }

  /** SIGKILL to the command's process group (its pid: setsid made it the group's leader), and to its descendants. */
  private static void killGroup(Process process) {
    List<ProcessHandle> descendants = process.descendants().toList();
    if (SETSID.isPresent()) {
      try {
        new ProcessBuilder("kill", "-s", "KILL", "--", "-" + process.pid())
            .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start()
            .waitFor(KILL_GRACE.toMillis(), TimeUnit.MILLISECONDS);
      } catch (IOException e) {
        LOG.log(System.Logger.Level.WARNING, "cannot kill the process group " + process.pid() + ": " + e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    process.destroyForcibly();
    descendants.forEach(ProcessHandle::destroyForcibly);
  }

  /** Reads one of a command's output streams to its end, on a daemon thread of its own. */
  private static final class Drain {
    private final java.io.ByteArrayOutputStream read = new java.io.ByteArrayOutputStream();
    private final Thread thread;

    Drain(InputStream stream, String name) {
      thread = new Thread(() -> {
        byte[] buffer = new byte[8192];
        try (stream) {
          for (int n; (n = stream.read(buffer)) >= 0; ) {
            synchronized (read) {
              read.write(buffer, 0, n);
            }
          }
        } catch (IOException closed) {
          // the stream is gone; what was read stays
        }
      }, name);
      thread.setDaemon(true);
      thread.start();
    }

    /** Waits for the end of the stream until the given System.nanoTime(); a holder beyond it is left reading. */
    void awaitEnd(long until) throws InterruptedException {
      long left = until - System.nanoTime();
      if (left > 0) {
        thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
      }
    }

    String text() {
      synchronized (read) {
        return read.toString(StandardCharsets.UTF_8);
      }
    }
  }

  /** Writes the jar's spawner into dir, replacing any older one in one rename, and returns its path. */
  static Path extract(Path dir) throws IOException {
    try (InputStream binary = ProcessSpawner.class.getResourceAsStream(BINARY)) {
      if (binary == null) {
        throw new FileNotFoundException(BINARY + " is not in the agent's jar (was it built without gcc?)");
      }
      Set<PosixFilePermission> owner = PosixFilePermissions.fromString("rwx------");
      FileAttribute<Set<PosixFilePermission>> ownerOnly = PosixFilePermissions.asFileAttribute(owner);
      Files.createDirectories(dir, ownerOnly);
      Files.setPosixFilePermissions(dir, owner);
      Path target = dir.resolve(BINARY);
      Path written = Files.createTempFile(dir, BINARY, ".new", ownerOnly);
      try {
        Files.copy(binary, written, StandardCopyOption.REPLACE_EXISTING);
        Files.setPosixFilePermissions(written, owner);
        Files.move(written, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } finally {
        Files.deleteIfExists(written);
      }
      return target;
    }
  }

  private static boolean hasNul(Iterable<String> strings) {
    for (String s : strings) {
      if (s.indexOf('\0') >= 0) {
        return true;
      }
    }
    return false;
  }

  private static String last(List<String> argv) {
    return argv.get(argv.size() - 1);
  }

  private static String describe(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
  }
}

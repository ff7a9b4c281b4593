package dev.ipseccni.firewall;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs iptables-save and iptables-restore (blocking: call from a worker, never the event loop).
 * Every change goes through one iptables-restore --noflush, so it is applied as one transaction
 * per table and rules we do not own are left as they are.
 */
public final class Iptables {
  /** iptables waits this long for the xtables lock (-w); a command gets a little more before we give up. */
  static final int LOCK_WAIT_SECONDS = 5;
  private static final long COMMAND_TIMEOUT_SECONDS = LOCK_WAIT_SECONDS + 10;

  private final List<String> prefix;
  private final String save;
  private final String restore;
  private final long timeoutMillis;

  public Iptables(List<String> prefix, String save, String restore) {
    this(prefix, save, restore, TimeUnit.SECONDS.toMillis(COMMAND_TIMEOUT_SECONDS));
  }

  Iptables(List<String> prefix, String save, String restore, long timeoutMillis) {
    this.prefix = List.copyOf(prefix);
    this.save = save;
    this.restore = restore;
    this.timeoutMillis = timeoutMillis;
  }

  public static Iptables of(FirewallSettings settings) {
    return new Iptables(settings.commandPrefix(), settings.iptablesSave(), settings.iptablesRestore());
  }

  /** All tables in one iptables-save: one command per check, however many tables we own chains in. */
  public Map<String, SavedTable> save() throws IptablesException {
    return SavedTable.parseAll(run(List.of(save), ""));
  }

  /** Applies a restore script; nothing is flushed except the chains the script declares. */
  public void restore(String script) throws IptablesException {
    run(List.of(restore, "-w", String.valueOf(LOCK_WAIT_SECONDS), "--noflush"), script);
  }

  /**
   * Runs another command of the firewall (nft, ip xfrm) with the same prefix and timeout; fails
   * with the command, its status and its error output unless it exits 0.
   */
  String run(String stdin, String... args) throws IptablesException {
    return run(List.of(args), stdin);
  }

  /**
   * Runs a command and returns its status with its output (stdout, or stderr when it failed),
   * whatever the status; a command that cannot be started has status -1 and says "cannot run".
   */
  Outcome attempt(String... args) throws IptablesException {
    return execute(List.of(args), "");
  }

  /** A command's exit status and what it said: stdout when it succeeded, else its error output. */
  record Outcome(int status, String output) {}

  private String run(List<String> args, String stdin) throws IptablesException {
    Outcome outcome = execute(args, stdin);
    if (outcome.status() != 0) {
      String detail = outcome.output().strip();
      throw new IptablesException(detail.startsWith("cannot run '") ? detail
          : "'" + shown(args) + "' failed with status " + outcome.status()
              + (detail.isEmpty() ? "" : ": " + detail) + (stdin.isEmpty() ? "" : "\ninput was:\n" + stdin));
    }
    return outcome.output();
  }

  private String shown(List<String> args) {
    List<String> command = new ArrayList<>(prefix);
    command.addAll(args);
    return String.join(" ", command);
  }

  private Outcome execute(List<String> args, String stdin) throws IptablesException {
    List<String> command = new ArrayList<>(prefix);
    command.addAll(args);
    String shown = shown(args);
    Process process;
    try {
      process = new ProcessBuilder(command).start();
    } catch (IOException e) {
      return new Outcome(-1, "cannot run '" + shown + "': " + e.getMessage());
    }
    CompletableFuture<String> err = drain(process.getErrorStream(), "stderr of " + shown);
    // stdout is read on its own thread too: a command that hangs with its output open must
    // still run into the timeout below, not block this worker for ever
    CompletableFuture<String> out = drain(process.getInputStream(), "stdout of " + shown);
    try (OutputStream in = process.getOutputStream()) {
      in.write(stdin.getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      // the command exited before reading its input; its exit status and stderr tell why
    }
    try {
      if (!process.waitFor(timeoutMillis, TimeUnit.MILLISECONDS)) {
        process.destroyForcibly();
        throw new IptablesException("'" + shown + "' did not finish within " + timeoutMillis + " ms; killed it");
      }
      int status = process.exitValue();
      return new Outcome(status, status == 0 ? out.get() : err.get());
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IptablesException("interrupted while running '" + shown + "'", e);
    } catch (java.util.concurrent.ExecutionException e) {
      throw new IptablesException("cannot read the output of '" + shown + "'", e.getCause());
    }
  }

  /** Reads a stream to its end on a thread of its own, so a chatty stderr cannot block the command. */
  private static CompletableFuture<String> drain(InputStream stream, String threadName) {
    CompletableFuture<String> result = new CompletableFuture<>();
    Thread reader = new Thread(() -> {
      try (stream) {
        result.complete(new String(stream.readAllBytes(), StandardCharsets.UTF_8));
      } catch (IOException e) {
        result.complete("");
      }
    }, threadName);
    reader.setDaemon(true);
    reader.start();
    return result;
  }
}

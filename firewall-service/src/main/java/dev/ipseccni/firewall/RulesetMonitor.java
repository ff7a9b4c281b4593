package dev.ipseccni.firewall;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * Watches the ruleset through a long-running command (nft monitor) that prints a line per
 * change, so drift is seen when it happens instead of at the next periodic check. The lines are
 * not interpreted: any change triggers a check, which decides whether anything is ours.
 */
public final class RulesetMonitor {
  private static final Logger LOG = Logger.getLogger(RulesetMonitor.class.getName());

  private final List<String> command;
  private final Runnable onChange;
  private volatile Process process;
  private volatile boolean stopped;
  /** The last exit reported, so a monitor that cannot run is not logged at every restart. */
  private volatile String lastExit = "";

  public RulesetMonitor(List<String> prefix, List<String> monitorCommand, Runnable onChange) {
    List<String> full = new ArrayList<>(prefix);
    full.addAll(monitorCommand);
    this.command = List.copyOf(full);
    this.onChange = onChange;
  }

  /** Starts the command; false (and a log line) when it cannot run, leaving the periodic check alone. */
  public synchronized boolean start() {
    if (stopped) {
      return false;
    }
    try {
      Process started = new ProcessBuilder(command).redirectErrorStream(true).start();
      process = started;
      Thread reader = new Thread(() -> read(started), "ruleset monitor");
      reader.setDaemon(true);
      reader.start();
      return true;
    } catch (IOException e) {
      LOG.warning(() -> "cannot run '" + String.join(" ", command) + "' (" + e.getMessage()
          + "); drift is found by the periodic check alone");
      return false;
    }
  }

  public boolean isAlive() {
    Process current = process;
    return current != null && current.isAlive();
  }

  public synchronized void stop() {
    stopped = true;
    Process current = process;
    if (current != null) {
      current.destroy();
    }
  }

  private void read(Process watched) {
    String last = "";
    try (BufferedReader lines = new BufferedReader(
        new InputStreamReader(watched.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = lines.readLine()) != null) {
        last = line;
        onChange.run();
      }
    } catch (IOException e) {
      // the process went away; reported below
    }
    String exit = "'" + String.join(" ", command) + "' exited"
        + (last.isEmpty() ? "" : " (last output: " + last + ")") + "; restarted at the next check";
    if (!stopped && !exit.equals(lastExit)) {
      lastExit = exit;
      LOG.warning(exit);
    }
  }
}

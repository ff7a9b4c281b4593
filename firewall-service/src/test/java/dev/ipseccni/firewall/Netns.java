package dev.ipseccni.firewall;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Test network namespaces, all named "fw-…". Each is removed by name before it is made, so a
 * crashed earlier run leaves nothing in the way, and again when the test is done.
 */
final class Netns implements AutoCloseable {
  final String name;

  private Netns(String name) {
    this.name = name;
  }

  static Netns fresh(String name) {
    if (!name.startsWith("fw-")) {
      throw new IllegalArgumentException("test namespaces are named fw-…: " + name);
    }
    removeIfPresent(name);
    host("ip", "netns", "add", name);
    Netns ns = new Netns(name);
    ns.run("ip", "link", "set", "lo", "up");
    return ns;
  }

  /**
   * Ends the processes left inside (a ruleset monitor of a crashed run would keep the namespace
   * alive), by PID, then deletes the namespace.
   */
  static void removeIfPresent(String name) {
    if (new java.io.File("/run/netns/" + name).exists()) {
      for (String pid : host("ip", "netns", "pids", name).split("\\s+")) {
        if (!pid.isBlank()) {
          exec(List.of("kill", pid.strip()), "", false);
        }
      }
      host("ip", "netns", "delete", name);
    }
  }

  /** The prefix that runs a command inside this namespace. */
  List<String> prefix() {
    return List.of("ip", "netns", "exec", name);
  }

  /** Runs a command inside; fails the test when it fails. */
  String run(String... command) {
    List<String> full = new ArrayList<>(prefix());
    full.addAll(List.of(command));
    return exec(full, "", true).output;
  }

  /** Runs a command inside and returns its exit status, whatever it is. */
  int status(String... command) {
    List<String> full = new ArrayList<>(prefix());
    full.addAll(List.of(command));
    return exec(full, "", false).status;
  }

  String restore(String script) {
    List<String> full = new ArrayList<>(prefix());
    full.addAll(List.of("iptables-restore", "-w", "--noflush"));
    return exec(full, script, true).output;
  }

  /**
   * iptables-save of the whole namespace without comments lines and counters, the nftables
   * tables and the XFRM policies, to compare rulesets.
   */
  String ruleset() {
    StringBuilder kept = new StringBuilder();
    kept.append(run("nft", "list", "tables")).append(run("ip", "xfrm", "policy", "list"));
    for (String line : run("iptables-save").split("\n")) {
      if (!line.startsWith("#")) {
        kept.append(line.replaceAll("\\[\\d+:\\d+\\]", "[0:0]")).append('\n');
      }
    }
    return kept.toString();
  }

  /** Packets counted by the first rule of a chain whose text contains the marker. */
  long packets(String table, String chain, String marker) {
    for (String line : run("iptables-save", "-c", "-t", table).split("\n")) {
      if (line.contains("-A " + chain + " ") && line.contains(marker)) {
        return Long.parseLong(line.substring(1, line.indexOf(':')));
      }
    }
    throw new AssertionError("no rule in " + table + "/" + chain + " contains " + marker);
  }

  /**
   * A prefix that runs commands inside this namespace with the named commands replaced by ones
   * that fail as a kernel without the feature does (written into {@code bin}).
   */
  List<String> prefixFailing(java.nio.file.Path bin, String... commands) throws IOException {
    for (String command : commands) {
      java.nio.file.Path fake = bin.resolve(command);
      java.nio.file.Files.writeString(fake, "#!/bin/sh\necho \"" + command
          + ": Error: Could not process rule: Operation not supported\" >&2\nexit 1\n");
      fake.toFile().setExecutable(true);
    }
    List<String> full = new ArrayList<>(prefix());
    full.addAll(List.of("env", "PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin"));
    return full;
  }

  static String host(String... command) {
    return exec(List.of(command), "", true).output;
  }

  @Override
  public void close() {
    removeIfPresent(name);
  }

  /** Polls until the condition holds or the deadline passes. */
  static boolean eventually(long timeoutMillis, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    while (System.nanoTime() < deadline) {
      if (condition.getAsBoolean()) {
        return true;
      }
      TimeUnit.MILLISECONDS.sleep(20);
    }
    return condition.getAsBoolean();
  }

  private record Result(int status, String output) {}

  private static Result exec(List<String> command, String stdin, boolean mustSucceed) {
    try {
      Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
      try (var in = process.getOutputStream()) {
        in.write(stdin.getBytes(StandardCharsets.UTF_8));
      }
      String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!process.waitFor(60, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new AssertionError(String.join(" ", command) + " did not finish");
      }
      if (mustSucceed && process.exitValue() != 0) {
        throw new AssertionError(String.join(" ", command) + " failed (" + process.exitValue() + "): " + output);
      }
      return new Result(process.exitValue(), output);
    } catch (IOException e) {
      throw new AssertionError("cannot run " + command, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}

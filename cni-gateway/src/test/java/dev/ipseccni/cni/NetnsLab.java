package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Network namespaces for the tests: one "node" (where the bridge plugin runs and cni0
 * lives) and pods. Every name starts with {@code cg-}; whatever an earlier, crashed run
 * left with that prefix is deleted first, by name.
 */
final class NetnsLab implements AutoCloseable {
  static final String PREFIX = "cg-";
  final String node = PREFIX + "node";
  private final List<String> created = new ArrayList<>();

  NetnsLab() {
    for (String line : sh("ip", "netns", "list").split("\n")) {
      String name = line.split(" ")[0];
      if (name.startsWith(PREFIX)) {
        sh("ip", "netns", "delete", name);
      }
    }
    create(node);
    must("ip", "-n", node, "link", "set", "lo", "up");
  }

  /** Creates a pod namespace and returns its CNI_NETNS path. */
  String pod(String name) {
    create(PREFIX + name);
    must("ip", "-n", PREFIX + name, "link", "set", "lo", "up");
    return "/run/netns/" + PREFIX + name;
  }

  List<String> inNode() {
    return List.of("ip", "netns", "exec", node);
  }

  private void create(String name) {
    must("ip", "netns", "add", name);
    created.add(name);
  }

  /** Runs a command; returns its exit code. */
  static int run(String... argv) {
    try {
      Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  static void must(String... argv) {
    assertEquals(0, run(argv), String.join(" ", argv));
  }

  static String sh(String... argv) {
    try {
      Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      p.waitFor();
      return out;
    } catch (IOException e) {
      throw new IllegalStateException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    for (String name : created) {
      run("ip", "netns", "delete", name);
    }
  }
}

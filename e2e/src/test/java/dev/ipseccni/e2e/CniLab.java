package dev.ipseccni.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.StreamSupport;

/**
 * Runs our plugin binary inside a lab node exactly as a container runtime on that node
 * would: a fresh exec per call, the CNI_* environment, the conflist's plugin entry (with
 * the list's {@code name} and {@code cniVersion} injected, as libcni does) on stdin, and
 * a pod namespace under {@code /run/netns}. Nothing but the conflist tells the plugin
 * where the agent is: the lab's {@code IPSEC_CNI_AGENT_SOCKET} fallback is removed.
 */
final class CniLab {

  static final String PREFIX = System.getenv().getOrDefault("LAB_PREFIX", "lab-");

  /** A pod as the runtime knows it: its sandbox namespace and container id. */
  record Pod(String name, String containerId) {
    String namespace() {
      return PREFIX + "pod-" + name;
    }

    String netns() {
      return "/run/netns/" + namespace();
    }

    /** The lab's name for the namespace, for {@code lab exec pod-NAME}. */
    String where() {
      return "pod-" + name;
    }
  }

  /** One plugin execution: exit status, stdout (result or error), stderr (logs). */
  record Call(int exitCode, String stdout, String stderr) {
    JsonNode json() {
      try {
        return LabHarness.JSON.readTree(stdout);
      } catch (IOException e) {
        throw new AssertionError("plugin stdout is not JSON (exit " + exitCode + "): " + stdout + "\n" + stderr, e);
      }
    }

    Call ok(String what) {
      if (exitCode != 0) {
        throw new AssertionError(what + ": exit " + exitCode + "\nstdout: " + stdout + "\nstderr: " + stderr);
      }
      return this;
    }

    int code() {
      return json().path("code").asInt(-1);
    }
  }

  final LabHarness lab;
  final Path plugin;
  /** The runtime's CNI_PATH: our plugin's directory first, then the reference plugins. */
  final String cniPath;

  CniLab(LabHarness lab) {
    this.lab = lab;
    this.plugin = lab.repoRoot().resolve("cni-gateway/target/ipsec-cni");
    if (!Files.isExecutable(plugin)) {
      throw new IllegalStateException("no plugin binary at " + plugin + ": run mvn install first");
    }
    this.cniPath = plugin.getParent() + ":/usr/lib/cni";
  }

  /** {@code lab up N} with these agent settings merged over the generated ones. */
  void up(int nodes, String agentConfigExtra) {
    List<String> command = List.of(lab.repoRoot().resolve("scripts/lab").toString(), "up", String.valueOf(nodes));
    Result r = run(command, Map.of("LAB_AGENT_CONFIG_EXTRA", agentConfigExtra), "");
    if (r.exitCode != 0) {
      throw new AssertionError("lab up " + nodes + " failed: " + r.stderr);
    }
  }

  /** The conflist node's agent wrote, once it is there. */
  JsonNode conflist(int node) {
    Path dir = lab.nodeDir(node).resolve("cni/net.d");
    LabHarness.await(java.time.Duration.ofMinutes(3), "node" + node + " conflist in " + dir, () -> conflistFile(dir) != null);
    try {
      return LabHarness.JSON.readTree(Files.readString(conflistFile(dir)));
    } catch (IOException e) {
      throw new AssertionError("cannot read the conflist of node" + node, e);
    }
  }

  private static Path conflistFile(Path dir) {
    try (var files = Files.list(dir)) {
      return files.filter(f -> f.toString().endsWith(".conflist")).sorted().findFirst().orElse(null);
    } catch (IOException e) {
      return null;
    }
  }

  /** What libcni puts on stdin for plugin 0 of the conflist, in the given version. */
  ObjectNode stdin(JsonNode conflist, String cniVersion) {
    ObjectNode conf = ((ObjectNode) conflist.path("plugins").get(0)).deepCopy();
    conf.put("cniVersion", cniVersion);
    conf.put("name", conflist.path("name").asText());
    return conf;
  }

  Pod newPod(String name) {
    Pod pod = new Pod(name, "cx" + Long.toHexString(Double.doubleToLongBits(Math.random())) + name.replace("-", ""));
    host("ip", "netns", "add", pod.namespace());
    host("ip", "-n", pod.namespace(), "link", "set", "lo", "up");
    return pod;
  }

  /** The runtime removes the sandbox namespace (its veth end, and with it the host end, go too). */
  void removeNamespace(Pod pod) {
    if (Files.exists(Path.of(pod.netns()))) {
      host("ip", "netns", "del", pod.namespace());
    }
  }

  /** CNI_COMMAND for this pod with CONTAINERID, NETNS, IFNAME=eth0, ARGS and PATH as a runtime sets them. */
  Call call(int node, String command, Pod pod, JsonNode stdin) {
    return call(node, podEnv(command, pod), stdin);
  }

  Map<String, String> podEnv(String command, Pod pod) {
    Map<String, String> env = new LinkedHashMap<>();
    env.put("CNI_COMMAND", command);
    env.put("CNI_CONTAINERID", pod.containerId());
    env.put("CNI_NETNS", pod.netns());
    env.put("CNI_IFNAME", "eth0");
    env.put("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=cni-lab;K8S_POD_NAME=" + pod.name()
        + ";K8S_POD_INFRA_CONTAINER_ID=" + pod.containerId());
    env.put("CNI_PATH", cniPath);
    return env;
  }

  /** One plugin execution inside node with exactly this CNI environment. */
  Call call(int node, Map<String, String> cniEnv, JsonNode stdin) {
    List<String> command = new ArrayList<>(List.of(lab.repoRoot().resolve("scripts/lab").toString(), "exec",
        String.valueOf(node), "env", "-u", "IPSEC_CNI_AGENT_SOCKET"));
    cniEnv.forEach((k, v) -> command.add(k + "=" + v));
    command.add(plugin.toString());
    Result r = run(command, Map.of(), stdin.toString());
    return new Call(r.exitCode, r.stdout, r.stderr);
  }

  /** ADD until the agent stops answering "try again later" (11), as kubelet retries a sandbox. */
  Call addRetrying(int node, Pod pod, JsonNode stdin, java.time.Duration deadline) {
    long end = System.nanoTime() + deadline.toNanos();
    Call add;
    while (true) {
      add = call(node, "ADD", pod, stdin);
      if (add.exitCode() == 0 || System.nanoTime() > end) {
        return add;
      }
      // kubelet tears a failed sandbox down before it tries again
      call(node, "DEL", pod, stdin).ok("DEL after a failed ADD of " + pod.name());
    }
  }

  /** The pod addresses node's IPAM holds: container id → address (CIDR). */
  Map<String, String> allocations(int node) {
    JsonNode state = lab.state(node).orElseThrow(() -> new AssertionError("node" + node + " /state does not answer"));
    Map<String, String> held = new LinkedHashMap<>();
    for (JsonNode a : state.path("ipam").path("allocations")) {
      String previous = held.put(a.path("containerId").asText() + "/" + a.path("ifName").asText(),
          a.path("address").asText());
      if (previous != null) {
        throw new AssertionError("IPAM holds two allocations for one key: " + state.path("ipam"));
      }
    }
    return held;
  }

  /** Host-side pod veth ends in node's namespace (the bridge plugin names them vethXXXXXXXX; eth0 is the underlay). */
  List<String> veths(int node) {
    LabHarness.Result r = lab.exec(String.valueOf(node), "ip", "-o", "link", "show", "type", "veth")
        .orFail("ip link in node" + node);
    return r.stdout().lines().map(l -> l.split(":\\s+")[1].split("@")[0]).filter(n -> n.startsWith("veth")).toList();
  }

  static Set<String> addresses(JsonNode result) {
    Set<String> out = new HashSet<>();
    StreamSupport.stream(result.path("ips").spliterator(), false).forEach(ip -> out.add(ip.path("address").asText()));
    return out;
  }

  static String address(JsonNode result) {
    return result.path("ips").get(0).path("address").asText();
  }

  void host(String... command) {
    Result r = run(List.of(command), Map.of(), "");
    if (r.exitCode != 0) {
      throw new AssertionError(String.join(" ", command) + " failed: " + r.stderr);
    }
  }

  /** Runs a command on the host (not in a lab namespace) and returns whatever happened. */
  LabHarness.Result run(List<String> command) {
    Result r = run(command, Map.of(), "");
    return new LabHarness.Result(r.exitCode, r.stdout, r.stderr);
  }

  private record Result(int exitCode, String stdout, String stderr) { }

  private static Result run(List<String> command, Map<String, String> env, String stdin) {
    try {
      // Files, not pipes: the lab may leave background processes holding inherited descriptors.
      Path out = Files.createTempFile("cni-lab-out", ".txt");
      Path err = Files.createTempFile("cni-lab-err", ".txt");
      Path in = Files.createTempFile("cni-lab-in", ".txt");
      try {
        Files.writeString(in, stdin, StandardCharsets.UTF_8);
        ProcessBuilder builder = new ProcessBuilder(command).redirectInput(in.toFile())
            .redirectOutput(out.toFile()).redirectError(err.toFile());
        builder.environment().putAll(env);
        Process p = builder.start();
        if (!p.waitFor(LabHarness.COMMAND_DEADLINE.toSeconds(), TimeUnit.SECONDS)) {
          p.destroyForcibly();
          throw new AssertionError(String.join(" ", command) + " still running after " + LabHarness.COMMAND_DEADLINE);
        }
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
            Files.readString(err, StandardCharsets.UTF_8));
      } finally {
        Files.deleteIfExists(in);
        Files.deleteIfExists(out);
        Files.deleteIfExists(err);
      }
    } catch (IOException e) {
      throw new AssertionError("cannot run " + command, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted running " + command, e);
    }
  }
}

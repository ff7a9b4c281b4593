package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The lab itself, without agents: the topology a node sees, one charon per node, and a
 * {@code down} that leaves nothing behind however the previous run ended.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LabScriptTest {

  private static final Duration GONE = Duration.ofSeconds(30);
  private LabHarness lab;

  @BeforeAll
  void harness() {
    lab = new LabHarness();
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void charonAnswersOnEveryNodeEachWithItsOwnSocket() {
    lab.lab("up", "3", "--no-agent");
    Set<Long> pids = new HashSet<>();
    for (int node = 1; node <= 3; node++) {
      Path socket = lab.nodeDir(node).resolve("charon.vici");
      LabHarness.Result stats = lab.exec(String.valueOf(node), "swanctl", "--stats", "--uri", "unix://" + socket)
          .orFail("swanctl --stats on node" + node);
      assertTrue(stats.stdout().contains("kernel-libipsec"), "node" + node + " charon runs libipsec: " + stats.stdout());
      assertTrue(stats.stdout().contains("vici"), stats.stdout());
      pids.add(lab.pid("charon", node).orElseThrow(() -> new AssertionError("no charon pid")));
    }
    assertEquals(3, pids.size(), "one charon per node");
  }

  @Test
  void nodesRouteThroughTheRouterToTheOutsideAndPodTrafficThereIsCounted() {
    lab.lab("up", "2", "--no-agent", "--no-charon");
    lab.exec("1", "ping", "-c", "1", "-W", "5", LabHarness.address(2)).orFail("node1 -> node2 on the underlay");
    lab.exec("2", "ping", "-c", "1", "-W", "5", "198.51.100.10").orFail("node2 -> outside through the router");
    assertEquals("0", lab.lab("leaks").stdout().trim());

    // No tunnel, no guard: a packet to a remote pod block follows the default route and
    // shows up on the router in plaintext. The lab has to make that visible.
    LabHarness.Result ping = lab.exec("1", "ping", "-c", "1", "-W", "2", "10.128.2.2");
    assertNotEquals(0, ping.exitCode(), "nothing answers for a pod address");
    assertNotEquals("0", lab.lab("leaks").stdout().trim(), "the plaintext packet reached the router");
  }

  @Test
  void eachNodeHasItsOwnAgentSocketStateAndConfig() throws IOException {
    lab.lab("up", "2", "--no-agent", "--no-charon", "--services", "ipam,tunnel");
    Set<String> paths = new HashSet<>();
    for (int node = 1; node <= 2; node++) {
      Path config = Path.of(lab.lab("config", String.valueOf(node)).stdout().trim());
      JsonNode c = LabHarness.JSON.readTree(config.toFile());
      assertEquals("node" + node, c.path("nodeName").asText());
      assertEquals(LabHarness.address(node), c.path("underlayAddress").asText());
      assertEquals(LabHarness.address(node), c.path("api").path("address").asText());
      assertEquals("10.128." + node + ".0/24", c.path("network").path("preferredBlock").asText());
      List<String> services = new ArrayList<>();
      c.path("services").forEach(s -> services.add(s.asText()));
      assertEquals(List.of("ipam", "tunnel"), services);
      assertEquals(2, c.path("cluster").path("members").size());
      for (String key : List.of("cniSocket", "stateDir", "cniConfDir")) {
        String path = c.path(key).asText();
        assertTrue(path.startsWith(lab.nodeDir(node).toString()), key + " lives in node" + node + "'s dir: " + path);
        assertTrue(paths.add(path), key + " is not shared between nodes: " + path);
      }
      assertTrue(paths.add(c.path("charon").path("viciSocket").asText()));
      Path secret = Path.of(c.path("secretFile").asText());
      assertEquals(Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE),
          Files.getPosixFilePermissions(secret));
      assertTrue(Files.size(secret) >= 32);
    }
  }

  @Test
  void podsAreWiredByARealCniAddAndOnlyMasqueradedTrafficGetsOut() throws IOException {
    lab.lab("up", "1", "--no-agent", "--no-charon");
    Path nat = bridgeConflist("nat", true);
    Path plain = bridgeConflist("plain", false);

    JsonNode result = LabHarness.JSON.readTree(lab.lab("pod", "add", "1", "web", "--conf", nat.toString()).stdout());
    String web = result.path("ips").path(0).path("address").asText();
    assertTrue(web.startsWith("10.128.1."), "address from node1's block: " + result);
    // --ip asks for an address as podman --ip does (CNI_ARGS IP=), which host-local honours.
    lab.lab("pod", "add", "1", "db", "--conf", plain.toString(), "--ip", "10.128.1.77");
    String db = lab.lab("pod", "addr", "db").stdout().trim();
    assertEquals("10.128.1.77", db);
    assertNotEquals(web.split("/")[0], db);
    assertTrue(lab.namespaces().containsAll(List.of(TunnelLab.prefix() + "pod-web", TunnelLab.prefix() + "pod-db")));

    lab.exec("pod-web", "ping", "-c", "1", "-W", "5", db).orFail("pod to pod on the node's bridge");
    lab.exec("pod-web", "ping", "-c", "1", "-W", "5", "198.51.100.10").orFail("masqueraded pod to the outside host");
    assertEquals("0", lab.lab("leaks").stdout().trim(), "masqueraded traffic carries the node address");

    // Without NAT the outside host cannot answer a pod address, and the router saw it.
    assertNotEquals(0, lab.exec("pod-db", "ping", "-c", "1", "-W", "2", "198.51.100.10").exitCode());
    assertNotEquals("0", lab.lab("leaks").stdout().trim());

    lab.lab("pod", "del", "web");
    assertFalse(lab.namespaces().contains(TunnelLab.prefix() + "pod-web"));
    assertFalse(Files.exists(lab.nodeDir(1).resolve("state/host-local/lab-pods/" + web.split("/")[0])),
        "DEL released the address");
    lab.lab("down");
    assertFalse(lab.namespaces().contains(TunnelLab.prefix() + "pod-db"), "down removes pods too");
  }

  /**
   * The reference bridge + host-local plugins on node1's block, their state in node1's dir.
   * One network name for both variants: host-local then hands out distinct addresses.
   */
  private Path bridgeConflist(String name, boolean masquerade) throws IOException {
    Path file = Files.createTempFile("lab-" + name, ".conflist");
    file.toFile().deleteOnExit();
    Files.writeString(file, """
        {"cniVersion": "1.0.0", "name": "lab-pods", "plugins": [{
          "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": %s,
          "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.128.1.0/24"}]],
                   "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "%s"}}]}
        """.formatted(masquerade, lab.nodeDir(1).resolve("state/host-local")));
    return file;
  }

  @Test
  void pluginRunOnANodeTalksToThatNodesAgent() {
    Path plugin = lab.repoRoot().resolve("cni-gateway/target/ipsec-cni");
    assertTrue(Files.isExecutable(plugin), "the plugin binary is built: " + plugin);
    lab.lab("up", "2", "--no-agent", "--no-charon");
    // No agent runs: the plugin's error names the socket it tried, which must be its own node's.
    String config = "{\"cniVersion\":\"1.0.0\",\"name\":\"ipsec-cni\",\"type\":\"ipsec-cni\"}";
    for (int node = 1; node <= 2; node++) {
      LabHarness.Result status = lab.exec(String.valueOf(node), Map.of("CNI_COMMAND", "STATUS", "CNI_PATH", "/usr/lib/cni"),
          config, plugin.toString());
      assertNotEquals(0, status.exitCode(), status.stdout());
      assertTrue(status.stdout().contains(lab.nodeDir(node).resolve("state/cni.sock").toString()),
          "node" + node + "'s plugin asks node" + node + "'s agent: " + status.stdout());
    }
  }

  @Test
  void downTwiceLeavesNothingBehind() throws IOException {
    lab.lab("up", "2", "--no-agent");
    Path labDir = lab.labDir();
    List<Long> pids = new ArrayList<>();
    for (int node = 1; node <= 2; node++) {
      pids.add(lab.pid("charon", node).orElseThrow());
    }

    lab.lab("down");
    lab.lab("down");

    assertNothingLeft(labDir, pids);
  }

  @Test
  void agentRestartsAfterKillAndDownClearsEvenAStoppedOne() throws IOException {
    lab.lab("up", "1", "--services", "");
    Path labDir = lab.labDir();
    long first = lab.pid("agent", 1).orElseThrow(() -> new AssertionError("agent not recorded"));
    assertEquals(0, lab.exec("1", "curl", "-sf", "-m", "3", "http://" + LabHarness.address(1) + ":9750/healthz").exitCode());

    lab.lab("kill-agent", "1");
    assertFalse(ProcessHandle.of(first).map(ProcessHandle::isAlive).orElse(false), "kill-agent waits until it is gone");
    assertTrue(lab.pid("agent", 1).isEmpty());

    lab.lab("start-agent", "1");
    long second = lab.pid("agent", 1).orElseThrow();
    assertNotEquals(first, second);
    assertEquals("node1", lab.state(1).orElseThrow().path("node").asText());

    lab.lab("stop-agent", "1");
    assertFalse(ProcessHandle.of(second).map(ProcessHandle::isAlive).orElse(false), "stop-agent waits for the exit");
    assertTrue(lab.lab("status").stdout().contains("agent: down"), "status shows the stopped agent");
    lab.lab("start-agent", "1");
    long third = lab.pid("agent", 1).orElseThrow();

    // A run that dies while an agent is SIGSTOP'd must not leave it hanging on.
    lab.lab("pause-agent", "1");
    lab.lab("down");
    assertNothingLeft(labDir, List.of(first, second, third));
  }

  @Test
  void upAfterACrashedRunStartsClean() throws IOException {
    lab.lab("up", "1", "--no-agent");
    Path labDir = lab.labDir();
    long stale = lab.pid("charon", 1).orElseThrow();
    // A crashed run that also lost its records: the charon is still running, no pid file points at it.
    deleteRecursively(labDir);

    lab.lab("up", "1", "--no-agent");
    LabHarness.await(GONE, "the stale charon " + stale + " gone",
        () -> ProcessHandle.of(stale).map(p -> !p.isAlive()).orElse(true));
    long fresh = lab.pid("charon", 1).orElseThrow();
    assertNotEquals(stale, fresh);
    lab.exec("1", "swanctl", "--stats").orFail("the new charon answers");

    lab.lab("down");
    assertNothingLeft(labDir, List.of(stale, fresh));
  }

  private void assertNothingLeft(Path labDir, List<Long> pids) throws IOException {
    assertEquals(List.of(), lab.namespaces().stream().filter(n -> n.startsWith("lab-")).toList(),
        "no lab namespace remains");
    Path etcNetns = Path.of("/etc/netns");
    if (Files.isDirectory(etcNetns)) {
      try (Stream<Path> entries = Files.list(etcNetns)) {
        assertEquals(List.of(), entries.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("lab-")).toList(),
            "no /etc/netns/lab-* remains");
      }
    }
    assertFalse(Files.exists(labDir), labDir + " removed");
    for (long pid : pids) {
      assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "process " + pid + " is gone");
    }
  }

  private static void deleteRecursively(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
        Files.delete(p);
      }
    }
  }
}

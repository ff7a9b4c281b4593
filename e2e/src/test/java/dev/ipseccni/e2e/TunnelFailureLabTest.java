package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * What an operator sees when a tunnel cannot come up, on one 2-node lab reconfigured case
 * by case: node2's charon without the plugins for AES-GCM (node2 not ready, saying which
 * algorithm and package; no conflist; ADD 11, STATUS failing), then a different cluster
 * secret on node2 (both ends: authentication failed), then proposals node1 refuses (both
 * ends: no proposal chosen). Each seen in /readyz, /state and the CLI, and each recovers
 * once fixed. The cases run in order, each starting from a full mesh.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TunnelFailureLabTest {
  /** The lab's plugins without openssl and gcm: what a --no-install-recommends strongSwan has. */
  static final String NO_GCM = "random nonce aes sha1 sha2 hmac pem pkcs1 x509 pubkey gmp curve25519 kdf"
      + " kernel-libipsec kernel-netlink socket-default vici updown";
  static final Duration SEEN = Duration.ofSeconds(120);

  private LabHarness lab;
  private CniLab cni;
  private Path agentConfig2;
  private Path secret2;
  private String clusterSecret;

  @BeforeAll
  void twoNodesNode2WithAMinimalCharon() throws IOException {
    lab = new LabHarness();
    cni = new CniLab(lab);
    // the second case makes the pair keys differ: pre-shared keys, not the default certificates
    lab.lab("up", "2", "--no-agent", "--psk");
    lab.lab("stop-charon", "2");
    lab.lab("start-charon", "2", "--load", NO_GCM);
    // node2 reads its own copy of the cluster secret, so the second case can change it alone
    clusterSecret = Files.readString(lab.labDir().resolve("cluster-secret"));
    secret2 = lab.nodeDir(2).resolve("cluster-secret");
    writeSecret(secret2, clusterSecret);
    agentConfig2 = Path.of(lab.lab("config", "2").stdout().trim());
    editConfig2(c -> c.put("secretFile", secret2.toString()));
    lab.lab("start-agent", "1");
    lab.lab("start-agent", "2");
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  @Order(1)
  void aCharonWithoutAesGcmKeepsItsNodeFromTakingPodsAndSaysWhy() throws Exception {
    JsonNode readyz = awaitReadyz(2, "node2 not ready because of charon's algorithms only", r -> {
      List<String> failing = texts(r.body().path("failing"));
      return r.code() == 503 && failing.size() == 1 && failing.get(0).startsWith("tunnel: charon cannot do AES_GCM_16_256");
    }).body();
    String reason = texts(readyz.path("failing")).get(0);
    System.out.println("node2 /readyz (charon without gcm/openssl): " + readyz);
    assertTrue(reason.contains("load the openssl or gcm plugin (Debian: libstrongswan-standard-plugins)"), reason);
    assertEquals("not ready", readyz.path("status").asText());

    JsonNode conflist = cni.conflist(1);
    assertFalse(hasConflist(2), "node2 must write no conflist while its charon cannot encrypt");
    ObjectNode stdin = cni.stdin(conflist, "1.1.0");
    stdin.put("agentSocket", lab.nodeDir(2).resolve("state/cni.sock").toString());
    CniLab.Pod pod = cni.newPod("why-add");
    try {
      CniLab.Call add = cni.call(2, "ADD", pod, stdin);
      assertEquals(11, add.code(), "ADD on node2: " + add.stdout());
      assertTrue(add.json().path("details").asText().contains("AES_GCM_16_256")
          || add.json().path("msg").asText().contains("AES_GCM_16_256"), add.stdout());
      cni.call(2, "DEL", pod, stdin).ok("DEL after the refused ADD");
    } finally {
      cni.removeNamespace(pod);
    }
    CniLab.Call status = cni.call(2, Map.of("CNI_COMMAND", "STATUS", "CNI_PATH", cni.cniPath), stdin);
    // 51: not available, and pods already there may not reach other nodes (the tunnel is the cause)
    assertEquals(51, status.code(), "STATUS on node2: " + status.stdout());
    assertTrue(status.stdout().contains("charon cannot do AES_GCM_16_256"), status.stdout());

    LabHarness.Result cli = cli(2, "status");
    System.out.println("node2 STATUS: " + status.stdout() + "\nnode2 ipsec-cni status:\n" + cli.stdout());
    assertEquals(1, cli.exitCode(), "ipsec-cni status exits 1 on a node that is not ready:\n" + cli.stdout());
    assertTrue(cli.stdout().contains("charon cannot do AES_GCM_16_256"), cli.stdout());
    JsonNode charon = lastEvent(lab.state(2).orElseThrow(), "tunnel.charon", "node2");
    assertFalse(charon.path("payload").path("capable").asBoolean(), charon.toString());
    assertEquals("AES_GCM_16_256", charon.path("payload").path("missing").get(0).asText(), charon.toString());

    // one bad peer does not stop node1: ready, and it says what is wrong
    JsonNode readyz1 = awaitReadyz(1, "node1 ready", r -> r.code() == 200).body();
    assertTrue(readyz1.path("ready").asBoolean(), readyz1.toString());

    lab.lab("stop-charon", "2");
    lab.lab("start-charon", "2");
    awaitReadyz(2, "node2 ready once charon has its plugins", r -> r.code() == 200);
    LabHarness.await(SEEN, "node2 writes its conflist", () -> hasConflist(2));
    MeshTest.awaitFullMesh(lab, 2);
    JsonNode again = lastEvent(lab.state(2).orElseThrow(), "tunnel.charon", "node2");
    assertTrue(again.path("payload").path("capable").asBoolean(), again.toString());
  }

  @Test
  @Order(2)
  void aDifferentClusterSecretSaysAuthenticationFailedOnBothEnds() throws Exception {
    MeshTest.awaitFullMesh(lab, 2);
    writeSecret(secret2, "a-cluster-secret-that-only-node2-has-0123456789abcdef");
    restartAgent2();
    terminateTunnel();

    expectFailureOnBothEnds("authentication failed");

    writeSecret(secret2, clusterSecret);
    expectRecovered();
  }

  @Test
  @Order(3)
  void proposalsThePeerRefusesSayNoProposalChosenOnBothEnds() throws Exception {
    MeshTest.awaitFullMesh(lab, 2);
    editConfig2(c -> ((ObjectNode) c.path("charon")).put("ikeProposals", "aes128gcm16-prfsha256-ecp256")
        .put("espProposals", "aes128gcm16-ecp256"));
    restartAgent2();
    terminateTunnel();

    expectFailureOnBothEnds("no proposal chosen");

    editConfig2(c -> ((ObjectNode) c.path("charon")).remove(List.of("ikeProposals", "espProposals")));
    restartAgent2();
    expectRecovered();
  }

  // ------------------------------------------------------------------ the operator's view

  private void expectFailureOnBothEnds(String reason) {
    for (int node = 1; node <= 2; node++) {
      int n = node, peer = 3 - node;
      JsonNode state = lab.awaitState(n, SEEN, "node" + n + "'s tunnel row to node" + peer + " saying " + reason,
          s -> reason.equals(tunnelRow(s, "node" + peer).path("failure").asText()));
      JsonNode row = tunnelRow(state, "node" + peer);
      assertEquals("down", row.path("state").asText(), row.toString());
      assertTrue(row.path("failureMillis").asLong() > 0 && !row.path("failureDetail").asText().isEmpty(), row.toString());
      JsonNode readyz = awaitReadyz(n, "node" + n + " degraded by its tunnel to node" + peer,
          r -> r.code() == 200 && r.body().path("status").asText().equals("degraded")).body();
      assertTrue(texts(readyz.path("degraded")).get(0).startsWith("tunnel: tunnel to node" + peer + " not up: " + reason),
          readyz.toString());
      JsonNode failed = lastEvent(state, "tunnel.failed", "node" + n);
      assertEquals(reason, failed.path("payload").path("reason").asText(), failed.toString());
    }
    String[] out = {""};
    LabHarness.await(SEEN, "ipsec-cni tunnels shows '" + reason + "' for both ends", () -> {
      out[0] = cli(1, "tunnels").stdout();
      return out[0].contains("node1: " + reason) && out[0].contains("node2: " + reason);
    });
    System.out.println("ipsec-cni tunnels (" + reason + "):\n" + out[0] + "node1 /readyz: " + readyz(1).body());
  }

  private void expectRecovered() {
    MeshTest.awaitFullMesh(lab, 2);
    for (int node = 1; node <= 2; node++) {
      int n = node, peer = 3 - node;
      lab.awaitState(n, SEEN, "node" + n + "'s tunnel to node" + peer + " up with no failure", s -> {
        JsonNode row = tunnelRow(s, "node" + peer);
        return row.path("state").asText().equals("up") && row.path("failure").asText().isEmpty();
      });
      awaitReadyz(n, "node" + n + " ready, not degraded", r -> r.code() == 200
          && r.body().path("status").asText().equals("ready"));
    }
    String out = cli(1, "tunnels").stdout();
    assertTrue(out.contains("UP") && !out.contains("failed") && !out.contains("no proposal"), out);
  }

  // ------------------------------------------------------------------ helpers

  private record Readyz(int code, JsonNode body) {}

  private Readyz readyz(int node) {
    LabHarness.Result r = lab.exec(String.valueOf(node), "curl", "-s", "-m", "3", "-w", "\n%{http_code}",
        "http://" + LabHarness.address(node) + ":" + LabHarness.API_PORT + "/readyz");
    if (r.exitCode() != 0) {
      return new Readyz(0, LabHarness.JSON.missingNode());
    }
    String out = r.stdout().strip();
    int cut = out.lastIndexOf('\n');
    try {
      return new Readyz(Integer.parseInt(out.substring(cut + 1).trim()), LabHarness.JSON.readTree(out.substring(0, cut)));
    } catch (IOException | RuntimeException e) {
      return new Readyz(0, LabHarness.JSON.missingNode());
    }
  }

  private Readyz awaitReadyz(int node, String what, java.util.function.Predicate<Readyz> condition) {
    Readyz[] last = new Readyz[1];
    try {
      LabHarness.await(SEEN, what, () -> condition.test(last[0] = readyz(node)));
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + "; last /readyz of node" + node + ": " + (last[0] == null ? "none"
          : last[0].code() + " " + last[0].body()), e);
    }
    return last[0];
  }

  private LabHarness.Result cli(int node, String command) {
    return lab.exec(String.valueOf(node), lab.repoRoot().resolve("bin/ipsec-cni").toString(), command, "--api",
        "http://" + LabHarness.address(node) + ":" + LabHarness.API_PORT);
  }

  private static JsonNode tunnelRow(JsonNode state, String peer) {
    return StreamSupport.stream(state.path("tunnels").spliterator(), false)
        .filter(t -> t.path("peer").asText().equals(peer)).findFirst().orElse(LabHarness.JSON.missingNode());
  }

  private static JsonNode lastEvent(JsonNode state, String address, String node) {
    List<JsonNode> events = LabHarness.events(state, address).stream()
        .filter(e -> e.path("node").asText().equals(node)).toList();
    assertFalse(events.isEmpty(), "no " + address + " from " + node + " among the recent events");
    return events.get(events.size() - 1);
  }

  private static List<String> texts(JsonNode array) {
    return StreamSupport.stream(array.spliterator(), false).map(JsonNode::asText).toList();
  }

  private boolean hasConflist(int node) {
    try (var files = Files.list(lab.nodeDir(node).resolve("cni/net.d"))) {
      return files.anyMatch(f -> f.toString().endsWith(".conflist"));
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * Ends the tunnel's IKE SA, so that a new one must negotiate afresh: charon may keep the old one
   * while an agent restarts. An SA already gone (node2's restart deleted it) is what this wants too.
   */
  private void terminateTunnel() {
    LabHarness.Result r = lab.exec("1", "swanctl", "--terminate", "--ike", "peer-node2", "--force");
    if (r.exitCode() != 0 && !r.stderr().contains("no matching SAs to terminate found")) {
      r.orFail("swanctl --terminate on node1");
    }
  }

  private void restartAgent2() {
    lab.lab("stop-agent", "2");
    lab.lab("start-agent", "2");
  }

  private void editConfig2(java.util.function.Consumer<ObjectNode> edit) throws IOException {
    ObjectNode config = (ObjectNode) LabHarness.JSON.readTree(agentConfig2.toFile());
    edit.accept(config);
    Files.writeString(agentConfig2, LabHarness.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config));
  }

  /** As a Secret volume changes: a new 0600 file moved over the old one. */
  private static void writeSecret(Path file, String secret) throws IOException {
    Path tmp = file.resolveSibling(file.getFileName() + ".new");
    Files.writeString(tmp, secret);
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }
}

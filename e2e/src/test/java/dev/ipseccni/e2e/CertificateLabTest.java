package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The default lab authenticates IKE with per-node certificates: each agent is configured
 * with its certificate, key and the cluster CA made by {@code ipsec-cni pki}, the mesh comes
 * up with no pre-shared key in any charon, each charon verified its peers' ECDSA
 * signatures; a node written into the denied-node file loses its tunnels on the others while
 * they keep theirs.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CertificateLabTest {
  private static final int NODES = 3;
  private static final java.util.Map<String, String> FAST_RECONCILE =
      java.util.Map.of("LAB_AGENT_CONFIG_EXTRA", "{\"charon\":{\"reconcileSeconds\":2}}");

  private LabHarness lab;

  @BeforeAll
  void threeNodes() {
    lab = new LabHarness();
    lab.lab(FAST_RECONCILE, "up", String.valueOf(NODES));
    MeshTest.awaitFullMesh(lab, NODES);
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  @Order(1)
  void meshAuthenticatesWithTheNodesCertificatesAndNoSharedKey() throws Exception {
    for (int node = 1; node <= NODES; node++) {
      JsonNode config = LabHarness.JSON.readTree(lab.nodeDir(node).resolve("agent.json").toFile());
      assertEquals("certificate", config.path("charon").path("auth").asText(), "lab default");
      assertEquals(List.of(), TunnelLab.sharedKeys(lab, node), "node" + node + " holds no pre-shared key");
      String log = Files.readString(lab.nodeDir(node).resolve("charon.log"));
      for (int peer = 1; peer <= NODES; peer++) {
        if (peer != node) {
          String line = "authentication of 'node" + peer + "' with ECDSA_WITH_SHA256_DER successful";
          assertTrue(log.contains(line), "node" + node + "'s charon verified node" + peer + "'s certificate: " + line);
        }
      }
    }
    LabHarness.Result issued = lab.exec("1", "openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName",
        "-in", lab.nodeDir(1).resolve("ike").resolve("node.crt").toString());
    assertTrue(issued.stdout().contains("CN = node1"), issued.stdout());
    assertTrue(issued.stdout().contains("DNS:node1, IP Address:" + LabHarness.address(1)), issued.stdout());
  }

  @Test
  @Order(2)
  void deniedNodeLosesItsTunnelsWhileTheOthersKeepTheirs() throws Exception {
    String kept = TunnelLab.ikeSas(lab, 1).get("peer-node2").uniqueId();
    Path denied = lab.labDir().resolve("denied-nodes");
    Files.writeString(denied, "node3\n");
    for (int node = 1; node <= 2; node++) {
      int n = node;
      LabHarness.await(Duration.ofSeconds(60), "node" + n + " unloads node3's connection",
          () -> !TunnelLab.conns(lab, n).contains("peer-node3") && !TunnelLab.ikeSas(lab, n).containsKey("peer-node3"));
    }
    assertEquals(kept, TunnelLab.ikeSas(lab, 1).get("peer-node2").uniqueId(), "node1-node2 keeps its IKE SA");
    assertTrue(TunnelLab.tunnelUp(lab, 1, 2));
    // node3 reads the same file, which names only itself: it keeps trying, and its peers accept no node3
    assertFalse(TunnelLab.tunnelUp(lab, 1, 3));
  }
}

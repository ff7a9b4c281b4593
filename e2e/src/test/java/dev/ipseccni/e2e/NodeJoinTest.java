package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A fourth node joins a running three-node lab ({@code lab add-node}): every existing
 * node's charon loads a connection to it, the tunnels come up, and a pod created on the
 * new node is reachable (ping and TCP) from every node, through ESP only.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NodeJoinTest {

  static final Duration JOIN = Duration.ofSeconds(180);

  private LabHarness lab;

  @BeforeAll
  void threeNodes() {
    lab = new LabHarness();
    lab.lab("up", "3");
    MeshTest.awaitFullMesh(lab, 3);
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void joiningNodeIsLoadedByEveryPeerAndItsPodIsReachableFromEveryNode() throws Exception {
    for (int node = 1; node <= 3; node++) {
      assertTrue(!TunnelLab.conns(lab, node).contains("peer-node4"), "no peer-node4 before the join");
    }
    lab.lab("add-node");
    lab.lab("pod", "add", "4", "joined");
    String pod = TunnelLab.podAddress(lab, "joined");
    assertTrue(pod.startsWith("10.128.4."), "the pod has an address of node4's block: " + pod);
    TunnelLab.serveName(lab, "joined");

    for (int node = 1; node <= 3; node++) {
      int n = node;
      LabHarness.await(JOIN, "node" + n + " loaded peer-node4", () -> TunnelLab.conns(lab, n).contains("peer-node4"));
      assertTrue(TunnelLab.swanctl(lab, n, "--list-conns").contains("peer-node4:"),
          TunnelLab.swanctl(lab, n, "--list-conns"));
      // certificates, the lab's default: node4 is authenticated by its certificate, no pair key is loaded
      assertTrue(TunnelLab.swanctl(lab, n, "--list-conns").contains("remote public key authentication"),
          TunnelLab.swanctl(lab, n, "--list-conns"));
      assertEquals(java.util.List.of(), TunnelLab.sharedKeys(lab, n), "node" + n + " holds no pre-shared key");
    }
    MeshTest.awaitFullMesh(lab, 4);
    for (int node = 1; node <= 3; node++) {
      int n = node;
      LabHarness.await(JOIN, "node" + n + " pings pod joined " + pod, () -> TunnelLab.pingOnce(lab, String.valueOf(n), pod));
      assertEquals("pod joined", TunnelLab.httpGet(lab, String.valueOf(node), pod, "joined.txt"),
          "node" + node + " reaches the new pod over TCP");
    }
    assertEquals("0", lab.lab("leaks").stdout().trim(), "the router saw no pod address");
  }
}

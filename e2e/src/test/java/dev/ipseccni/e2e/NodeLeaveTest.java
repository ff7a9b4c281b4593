package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;


/**
 * Node3 leaves for good (agent and charon stopped). With short lease timings (renew 1 s,
 * grace 5 s) its lease expires, and nodes 1 and 2 unload its connection and its shared
 * key; their own tunnel stays.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NodeLeaveTest {

  static final Map<String, String> SHORT_LEASES =
      Map.of("LAB_AGENT_CONFIG_EXTRA", "{\"ipam\":{\"leaseRenewSeconds\":1,\"leaseGraceSeconds\":5}}");
  /** Grace (5 s) plus the expiry sweep and a reconcile; generous for a loaded machine. */
  static final Duration UNLOADED = Duration.ofSeconds(120);

  private LabHarness lab;

  @BeforeAll
  void threeNodesWithShortLeases() {
    lab = new LabHarness();
    // it checks that the leaving node's pair keys are unloaded: pre-shared keys, not the default certificates
    lab.lab(SHORT_LEASES, "up", "3", "--psk");
    MeshTest.awaitFullMesh(lab, 3);
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  @Order(1)
  void peerLeaveUnloadsItsConnectionAndItsKey() {
    for (int node = 1; node <= 2; node++) {
      assertTrue(TunnelLab.conns(lab, node).contains("peer-node3"), "node" + node + " has peer-node3 before");
      assertTrue(TunnelLab.sharedKeys(lab, node).contains("psk-peer-node3"), "node" + node + " has its key before");
    }
    lab.lab("stop-agent", "3");
    lab.lab("stop-charon", "3");

    for (int node = 1; node <= 2; node++) {
      int n = node;
      LabHarness.await(UNLOADED, "node" + n + " unloaded peer-node3 and psk-peer-node3",
          () -> !TunnelLab.conns(lab, n).contains("peer-node3")
              && !TunnelLab.sharedKeys(lab, n).contains("psk-peer-node3"));
      String conns = TunnelLab.swanctl(lab, n, "--list-conns");
      assertFalse(conns.contains("peer-node3"), conns);
      assertFalse(TunnelLab.ikeSas(lab, n).containsKey("peer-node3"), "no IKE SA left for node3 on node" + n);
    }
    assertTrue(TunnelLab.tunnelUp(lab, 1, 2) && TunnelLab.tunnelUp(lab, 2, 1), "node1 <-> node2 stays up");
    assertTrue(TunnelLab.sharedKeys(lab, 1).contains("psk-peer-node2"), "node1 keeps node2's key");
  }

  /** Then node1 is taken out of the network for good: the uninstall command after its agent. */
  @Test
  @Order(2)
  void uninstallLeavesNothingOfOursOnTheNode() {
    String confDir = lab.lab("dir", "1").stdout().trim() + "/cni/net.d";
    assertTrue(lab.exec("1", "ls", confDir).stdout().contains("10-ipsec-cni.conflist"));
    lab.lab("stop-agent", "1");

    LabHarness.Result out = lab.exec("1", lab.repoRoot().resolve("bin/ipsec-cni").toString(), "uninstall",
        "--config", lab.lab("config", "1").stdout().trim()).orFail("ipsec-cni uninstall");

    assertTrue(out.stdout().contains("unloaded from charon: [peer-node2]"), out.stdout());
    assertFalse(lab.exec("1", "ls", confDir).stdout().contains("10-ipsec-cni.conflist"), "conflist removed");
    String rules = lab.exec("1", "iptables-save").orFail("iptables-save").stdout();
    assertFalse(rules.contains("IPSEC-CNI"), "no chain or jump of ours is left:\n" + rules);
    assertEquals(List.of(), TunnelLab.conns(lab, 1));
    assertEquals(List.of(), TunnelLab.sharedKeys(lab, 1));
  }
}

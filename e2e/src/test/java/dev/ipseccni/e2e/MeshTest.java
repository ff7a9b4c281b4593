package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.e2e.TunnelLab.IkeSa;
import dev.ipseccni.e2e.TunnelLab.UnderlayCapture;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The full mesh on three nodes: one pod per node, created by a CNI ADD of the plugin
 * binary. Every pod reaches every remote pod (ping and TCP), every node reaches every
 * remote pod, and all of it crosses the underlay as ESP-in-UDP only: the CHILD SA
 * counters of every tunnel grow, and a capture of each node's underlay interface holds
 * UDP 4500 and not one packet with a pod address in clear.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class MeshTest {

  static final int NODES = 3;
  static final Duration TUNNELS_UP = Duration.ofSeconds(120);

  private LabHarness lab;
  private final Map<Integer, String> podOfNode = new LinkedHashMap<>();
  private final Map<String, String> addressOfPod = new LinkedHashMap<>();

  @BeforeAll
  void threeNodesOnePodEach() throws Exception {
    lab = new LabHarness();
    lab.lab("up", String.valueOf(NODES));
    for (int node = 1; node <= NODES; node++) {
      String pod = "mesh" + node;
      lab.lab("pod", "add", String.valueOf(node), pod);
      podOfNode.put(node, pod);
      addressOfPod.put(pod, TunnelLab.podAddress(lab, pod));
      TunnelLab.serveName(lab, pod);
    }
    awaitFullMesh(lab, NODES);
  }

  /** Every node has an established IKE SA with an installed CHILD SA to every other node. */
  static void awaitFullMesh(LabHarness lab, int nodes) {
    for (int node = 1; node <= nodes; node++) {
      for (int peer = 1; peer <= nodes; peer++) {
        if (peer == node) {
          continue;
        }
        int n = node, p = peer;
        LabHarness.await(TUNNELS_UP, "node" + n + " -> node" + p + " tunnel established",
            () -> TunnelLab.tunnelUp(lab, n, p));
      }
    }
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void everyPodAndNodeReachesEveryRemotePodOnlyThroughEspInUdp() throws Exception {
    Map<Integer, Map<String, IkeSa>> before = new LinkedHashMap<>();
    for (int node = 1; node <= NODES; node++) {
      before.put(node, TunnelLab.ikeSas(lab, node));
    }
    List<UnderlayCapture> captures = new ArrayList<>();
    try {
      for (int node = 1; node <= NODES; node++) {
        captures.add(UnderlayCapture.start(lab, node, "mesh"));
      }
      List<String> failures = new ArrayList<>();
      for (int from = 1; from <= NODES; from++) {
        String client = podOfNode.get(from);
        for (int to = 1; to <= NODES; to++) {
          if (to == from) {
            continue;
          }
          String server = podOfNode.get(to);
          String address = addressOfPod.get(server);
          if (!TunnelLab.pingOnce(lab, "pod-" + client, address)) {
            failures.add("pod " + client + " (node" + from + ") -/-> ping " + server + " " + address);
          }
          String answer = TunnelLab.httpGet(lab, "pod-" + client, address, server + ".txt");
          if (!("pod " + server).equals(answer)) {
            failures.add("pod " + client + " (node" + from + ") -/-> TCP " + server + " " + address + ":8080, got " + answer);
          }
          if (!TunnelLab.pingOnce(lab, String.valueOf(from), address)) {
            failures.add("node" + from + " -/-> ping " + server + " " + address);
          }
          String fromNode = TunnelLab.httpGet(lab, String.valueOf(from), address, server + ".txt");
          if (!("pod " + server).equals(fromNode)) {
            failures.add("node" + from + " -/-> TCP " + server + " " + address + ":8080, got " + fromNode);
          }
        }
      }
      assertEquals(List.of(), failures, "every pair reaches each other across the tunnels");
    } finally {
      for (UnderlayCapture c : captures) {
        c.stop();
      }
    }

    for (int node = 1; node <= NODES; node++) {
      Map<String, IkeSa> after = TunnelLab.ikeSas(lab, node);
      for (int peer = 1; peer <= NODES; peer++) {
        if (peer == node) {
          continue;
        }
        String conn = "peer-node" + peer;
        IkeSa b = before.get(node).get(conn);
        IkeSa a = after.get(conn);
        String context = "node" + node + " " + conn + " before " + b + " after " + a + "\n"
            + TunnelLab.swanctl(lab, node, "--list-sas");
        assertTrue(a != null && b != null && a.uniqueId().equals(b.uniqueId()), "the same IKE SA carried it: " + context);
        assertTrue(a.packetsOut() > b.packetsOut() && a.bytesOut() > b.bytesOut(), "CHILD SA out counters grew: " + context);
        assertTrue(a.packetsIn() > b.packetsIn() && a.bytesIn() > b.bytesIn(), "CHILD SA in counters grew: " + context);
      }
    }

    for (UnderlayCapture c : captures) {
      List<String> esp = c.packets(TunnelLab.ESP_IN_UDP);
      List<String> clear = c.packets("net " + TunnelLab.CLUSTER_CIDR);
      assertTrue(esp.size() >= 8, c.describe() + ": ESP-in-UDP packets expected, saw " + esp.size());
      assertEquals(List.of(), clear, c.describe() + ": packets with a pod address in clear");
    }
    assertEquals("0", lab.lab("leaks").stdout().trim(), "the router saw no pod address");
  }
}

package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.e2e.TunnelLab.Background;
import dev.ipseccni.e2e.TunnelLab.IkeSa;
import dev.ipseccni.e2e.TunnelLab.UnderlayCapture;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The production datapath on real Linux kernels: three User-Mode Linux nodes
 * ({@code lab up 3 --kernel}), each with its own kernel doing ESP in XFRM, charon with
 * kernel-netlink and the agent with {@code charon.datapath: kernel}. One lab for the class (a UML
 * node's agent starts in tens of seconds); the tests run in order, each leaving the mesh whole.
 *
 * <p>Captures are taken on the underlay bridge, the wire between the nodes: raw ESP (IP protocol
 * 50) between every pair of nodes, no ESP-in-UDP, not one packet with a pod address in clear.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class KernelDatapathTest {

  static final int NODES = 3;
  static final Duration WINDOW = Duration.ofSeconds(120);
  static final Duration RECOVERY = Duration.ofSeconds(180);
  static final int UNANSWERED_IN_WINDOW = 15;

  private LabHarness lab;
  private final Map<Integer, String> podOfNode = new LinkedHashMap<>();
  private final Map<String, String> addressOfPod = new LinkedHashMap<>();

  @BeforeAll
  void threeKernelNodesOnePodEach() throws Exception {
    lab = new LabHarness();
    lab.lab("up", String.valueOf(NODES), "--kernel");
    // one pod per node, added at once: an ADD in UML takes seconds
    java.util.stream.IntStream.rangeClosed(1, NODES).parallel()
        .forEach(node -> lab.lab("pod", "add", String.valueOf(node), "kern" + node));
    for (int node = 1; node <= NODES; node++) {
      recordPod(node, "kern" + node);
    }
    KernelLab.awaitFullMesh(lab, NODES);
  }

  private void addPod(int node, String pod) throws IOException {
    lab.lab("pod", "add", String.valueOf(node), pod);
    recordPod(node, pod);
  }

  private void recordPod(int node, String pod) throws IOException {
    podOfNode.put(node, pod);
    addressOfPod.put(pod, TunnelLab.podAddress(lab, pod));
    TunnelLab.serveName(lab, pod);
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  @Order(1)
  void everyPodAndNodeReachesEveryRemotePodOverRawEspOnly() throws Exception {
    Map<Integer, Map<String, long[]>> before = new LinkedHashMap<>();
    for (int node = 1; node <= NODES; node++) {
      before.put(node, KernelLab.packetTotals(lab, node));
    }
    List<String> failures = new ArrayList<>();
    try (UnderlayCapture wire = UnderlayCapture.bridge(lab, "mesh")) {
      for (int from = 1; from <= NODES; from++) {
        List<String> targets = new ArrayList<>();
        for (int to = 1; to <= NODES; to++) {
          if (to != from) {
            targets.add(addressOfPod.get(podOfNode.get(to)) + "=" + podOfNode.get(to));
          }
        }
        failures.addAll(probe("pod-" + podOfNode.get(from), "pod " + podOfNode.get(from) + " (node" + from + ")", targets));
        failures.addAll(probe(String.valueOf(from), "node" + from, targets));
      }
      wire.stop();
      if (!failures.isEmpty()) {
        StringBuilder sas = new StringBuilder();
        for (int node = 1; node <= NODES; node++) {
          sas.append("\nnode").append(node).append(": ").append(KernelLab.allIkeSas(lab, node));
          for (String[] diag : List.of(new String[] {"ip", "route", "show", "table", "220"},
              new String[] {"ip", "-4", "addr", "show", "cni0"},
              new String[] {"iptables", "-w", "-L", "IPSEC-CNI-OUT", "-v", "-n", "-x"},
              new String[] {"iptables", "-w", "-t", "nat", "-L", "IPSEC-CNI-NAT", "-v", "-n", "-x"})) {
            sas.append("\n$ ").append(String.join(" ", diag)).append('\n')
                .append(lab.exec(String.valueOf(node), diag).stdout());
          }
        }
        assertEquals(List.of(), failures, "every pair reaches each other across the tunnels; IKE SAs now:" + sas);
      }

      for (int from = 1; from <= NODES; from++) {
        for (int to = 1; to <= NODES; to++) {
          if (to != from) {
            List<String> esp = wire.packets(KernelLab.RAW_ESP + " and src " + LabHarness.address(from) + " and dst "
                + LabHarness.address(to));
            assertTrue(esp.size() >= 4, wire.describe() + ": raw ESP node" + from + " -> node" + to + " expected, saw "
                + esp.size());
          }
        }
      }
      assertEquals(List.of(), wire.packets(TunnelLab.ESP_IN_UDP), wire.describe() + ": no ESP-in-UDP");
      assertEquals(List.of(), wire.packets("net " + TunnelLab.CLUSTER_CIDR), wire.describe()
          + ": packets with a pod address in clear");
      assertEquals(List.of(), wire.packets(KernelLab.RAW_ESP + " and not (src net 192.0.2.0/24 and dst net 192.0.2.0/24)"),
          wire.describe() + ": ESP only between node addresses");
      // cluster.overIpsec (the default with kernel ESP and certificates): Hazelcast's heartbeats
      // and the pods' events crossed during the capture, inside the control plane's host-to-host SAs
      assertEquals(List.of(), wire.packets("tcp port " + CLUSTER_PORT + " or tcp port " + EVENT_BUS_PORT),
          wire.describe() + ": control-plane traffic in clear");
      String src = java.util.stream.IntStream.rangeClosed(1, NODES).mapToObj(n -> "src host " + LabHarness.address(n))
          .collect(java.util.stream.Collectors.joining(" or ", "(", ")"));
      String dst = src.replace("src host", "dst host");
      assertEquals(List.of(), wire.packets("ip and " + src + " and " + dst
          + " and not (udp port 500 or " + KernelLab.RAW_ESP + ")"), wire.describe() + ": between nodes only IKE and ESP");
    }
    for (int node = 1; node <= NODES; node++) {
      List<IkeSa> control = KernelLab.allIkeSas(lab, node).stream()
          .filter(sa -> sa.conn().startsWith("control-") && sa.state().equals("ESTABLISHED") && sa.installedChildren() > 0)
          .toList();
      assertTrue(control.stream().mapToLong(IkeSa::packetsIn).sum() > 0,
          "node" + node + ": the control plane's host-to-host SAs carry the cluster's traffic: " + control);
    }

    for (int node = 1; node <= NODES; node++) {
      Map<String, long[]> after = KernelLab.packetTotals(lab, node);
      for (int peer = 1; peer <= NODES; peer++) {
        if (peer == node) {
          continue;
        }
        String conn = "peer-node" + peer;
        long[] b = before.get(node).get(conn);
        long[] a = after.get(conn);
        String context = "node" + node + " " + conn + " packets in/out before " + (b == null ? "none" : b[0] + "/" + b[1])
            + " after " + (a == null ? "none" : a[0] + "/" + a[1]) + "; its IKE SAs now: "
            + KernelLab.allIkeSas(lab, node).stream().filter(sa -> sa.conn().equals(conn)).toList();
        assertTrue(a != null && b != null && a[1] > b[1] && a[0] > b[0], "the kernel's SA counters grew: " + context);
      }
      List<String> states = KernelLab.xfrm(lab, node, "state");
      assertTrue(states.stream().anyMatch(l -> l.contains("proto esp")) && states.stream().noneMatch(l -> l.contains("encap")),
          "node" + node + ": ESP SAs in the kernel, none UDP-encapsulated:\n" + String.join("\n", states));
    }
    assertEquals("0", lab.lab("leaks").stdout().trim(), "the router saw no pod address");
  }

  /** The pod MTU on 1500-byte links (9000 and 1400: {@link KernelMtuTest}). */
  @Test
  @Order(5)
  void podMtuFollowsA1500ByteUnderlay() throws Exception {
    KernelLab.proveMtu(lab, 1, podOfNode.get(1), podOfNode.get(2), addressOfPod.get(podOfNode.get(2)), 1500);
  }

  /**
   * charon on node1 stops (SIGTERM: it removes its SAs and policies from the kernel, and the
   * table-220 routes), so nothing of charon's is left on node1 while its pod and node keep sending
   * to a pod on node2: the firewall's guards alone stand between them and the underlay (the
   * iptables guard, and the two XFRM policies that are its guard after NAT on this kernel, whose
   * nf_tables has no IPv4 family).
   */
  @Test
  @Order(2)
  void withCharonGoneTheGuardKeepsPodTrafficOffTheWireAndTrafficComesBack() throws Exception {
    String agent = lab.lab("pid", "agent", "1").stdout().trim();
    String remotePod = addressOfPod.get(podOfNode.get(2));
    assertTrue(TunnelLab.pingOnce(lab, "pod-" + podOfNode.get(1), remotePod), "the tunnel works before");
    try (UnderlayCapture wire = UnderlayCapture.bridge(lab, "guard");
         Background podPing = Background.start(lab, "pod-" + podOfNode.get(1), "ping", "-n", "-O", "-i", "0.5", "-W", "1",
             remotePod);
         Background nodePing = Background.start(lab, "1", "ping", "-n", "-O", "-i", "0.5", "-W", "1", remotePod)) {
      LabHarness.await(Duration.ofSeconds(60), "both ping loops answered through the tunnel",
          () -> PlaintextGuardTest.replies(podPing) > 0 && PlaintextGuardTest.replies(nodePing) > 0);

      lab.lab("stop-charon", "1");
      // the kernel's own larval states (SPI 0) for packets its trap policies held stay until they expire
      List<String> states = java.util.Arrays.stream(String.join("\n", KernelLab.xfrm(lab, 1, "state")).split("\n(?=src )"))
          .filter(state -> !state.isBlank() && !state.contains("spi 0x00000000")).toList();
      assertEquals(List.of(), states, "node1: no SA left in the kernel");
      Map<String, List<String>> policies = KernelLab.policiesByOwner(lab, 1);
      assertEquals(List.of(), policies.get("charon"), "node1: no policy of charon's left in the kernel");
      assertEquals(2, policies.get("guard").size(), "node1: the firewall's guard after NAT stays: " + policies);
      assertEquals("", lab.exec("1", "ip", "route", "show", "table", "220").orFail("table 220").stdout().trim(),
          "node1: no table-220 route left");
      int podBefore = PlaintextGuardTest.unanswered(podPing);
      int nodeBefore = PlaintextGuardTest.unanswered(nodePing);
      LabHarness.await(WINDOW, UNANSWERED_IN_WINDOW + " unanswered echoes from each loop while charon is down",
          () -> PlaintextGuardTest.unanswered(podPing) - podBefore >= UNANSWERED_IN_WINDOW
              && PlaintextGuardTest.unanswered(nodePing) - nodeBefore >= UNANSWERED_IN_WINDOW);

      lab.lab("start-charon", "1");
      LabHarness.await(RECOVERY, "pod -> remote pod answers again after charon restarted",
          () -> TunnelLab.pingOnce(lab, "pod-" + podOfNode.get(1), remotePod));
      LabHarness.await(RECOVERY, "node1 -> remote pod answers again", () -> TunnelLab.pingOnce(lab, "1", remotePod));
      podPing.stop();
      nodePing.stop();
      wire.stop();
      assertEquals(List.of(), wire.packets("net " + TunnelLab.CLUSTER_CIDR), wire.describe()
          + ": packets with a pod address in clear");
      assertTrue(!wire.packets(KernelLab.RAW_ESP + " and host " + LabHarness.address(1)).isEmpty(),
          wire.describe() + ": raw ESP before and after");
    }
    assertEquals("0", lab.lab("leaks").stdout().trim(), "the router saw no pod address");
    assertEquals(agent, lab.lab("pid", "agent", "1").stdout().trim(), "the same agent process throughout");
    KernelLab.awaitFullMesh(lab, NODES);
  }

  /**
   * The kernel datapath's connections are {@code start_action = trap}: with both agents frozen
   * (nobody re-initiates) the IKE SA between node1 and node2 is torn down, the trap policies stay in
   * the kernel, and the next pod packet makes the kernel ask charon for an SA: the tunnel comes back
   * by traffic alone.
   */
  @Test
  @Order(3)
  void trafficBringsATornDownTunnelBack() throws Exception {
    String remotePod = addressOfPod.get(podOfNode.get(2));
    lab.lab("pause-agent", "1");
    lab.lab("pause-agent", "2");
    try (UnderlayCapture wire = UnderlayCapture.bridge(lab, "trap")) {
      lab.exec("1", "swanctl", "--terminate", "--ike", "peer-node2").orFail("terminate peer-node2 on node1");
      LabHarness.await(Duration.ofSeconds(60), "no SA between node1 and node2",
          () -> !KernelLab.ikeSas(lab, 1).containsKey("peer-node2") && !KernelLab.ikeSas(lab, 2).containsKey("peer-node1"));
      List<String> policies = KernelLab.xfrm(lab, 1, "policy");
      assertTrue(String.join("\n", policies).contains("dst 10.128.2.0/24"),
          "node1 keeps the trap policy to node2's block:\n" + String.join("\n", policies));
      // the control plane's transport-mode SAs with node2 stay: only the pod tunnel's went
      // a larval state (SPI 0) is the kernel holding a packet for the trap: no SA
      List<String> tunnelStates = java.util.Arrays.stream(String.join("\n", KernelLab.xfrm(lab, 1, "state")).split("\n(?=src )"))
          .filter(state -> state.contains(LabHarness.address(2)) && state.contains("mode tunnel")
              && !state.contains("spi 0x00000000")).toList();
      assertEquals(List.of(), tunnelStates, "node1 has no tunnel-mode SA with node2");

      LabHarness.await(Duration.ofSeconds(90), "pod on node1 -> pod on node2 answers (the trap fired)",
          () -> TunnelLab.pingOnce(lab, "pod-" + podOfNode.get(1), remotePod));
      assertTrue(KernelLab.tunnelUp(lab, 1, 2), "node1's tunnel to node2 is up again");
      wire.stop();
      assertEquals(List.of(), wire.packets("net " + TunnelLab.CLUSTER_CIDR), wire.describe()
          + ": packets with a pod address in clear");
    } finally {
      lab.lab("resume-agent", "1");
      lab.lab("resume-agent", "2");
    }
    // frozen longer than the heartbeat timeout, node1 and node2 split from the cluster when they
    // wake (Hazelcast sees the clock jump) and merge back; the next case starts on a whole cluster
    awaitWholeCluster(Duration.ofSeconds(120));
    assertTrue(java.nio.file.Files.readString(lab.nodeDir(1).resolve("charon.log")).contains("creating acquire job"),
        "charon on node1 logged the kernel's acquire (" + lab.nodeDir(1).resolve("charon.log") + ")");
  }

  /** Every node counts all nodes as members, and every tunnel of the mesh is up. */
  private void awaitWholeCluster(Duration deadline) {
    for (int node = 1; node <= NODES; node++) {
      int n = node;
      LabHarness.await(deadline, "node" + n + " counts every node as a member",
          () -> lab.state(n).map(LabHarness::members).orElse(List.of()).equals(List.of("node1", "node2", "node3")));
    }
    KernelLab.awaitFullMesh(lab, NODES);
  }

  /**
   * Power cut of node3, then boot: same block, tunnels to it back, and the tunnel between node1
   * and node2 untouched (the same IKE SA).
   */
  @Test
  @Order(4)
  void aRebootedNodeGetsItsBlockAndTunnelsBackAndTheOthersKeepTheirs() throws Exception {
    IkeSa oneTwo = KernelLab.ikeSas(lab, 1).get("peer-node2");
    assertTrue(oneTwo != null && oneTwo.state().equals("ESTABLISHED"), "node1 -> node2 before: " + oneTwo);
    String blockBefore = lab.state(3).orElseThrow().path("lease").path("block").asText();

    lab.lab("reboot", "3");
    podOfNode.remove(3);
    addPod(3, "kern3b");
    for (int node = 1; node <= 2; node++) {
      int n = node;
      LabHarness.await(KernelLab.TUNNELS_UP, "node" + n + " -> node3 tunnel back", () -> KernelLab.tunnelUp(lab, n, 3));
    }
    String blockAfter = lab.state(3).orElseThrow().path("lease").path("block").asText();
    assertEquals(blockBefore, blockAfter, "node3 has its block again");
    String newPod = addressOfPod.get("kern3b");
    assertTrue(newPod.startsWith(blockAfter.substring(0, blockAfter.lastIndexOf('.'))),
        "the new pod " + newPod + " is in node3's block " + blockAfter);
    LabHarness.await(Duration.ofSeconds(60), "pod on node1 -> new pod on node3",
        () -> TunnelLab.pingOnce(lab, "pod-" + podOfNode.get(1), newPod));
    IkeSa after = KernelLab.ikeSas(lab, 1).get("peer-node2");
    assertTrue(after != null && after.uniqueId().equals(oneTwo.uniqueId()),
        "node1 -> node2 kept its IKE SA: before " + oneTwo + " after " + after);
  }

  /**
   * A ClusterIP + NodePort Service as kube-proxy writes it ({@code lab service}) over the three
   * pods: from the outside host to node2's node port, and from node1 to the cluster IP, every
   * request is answered and every pod answers some, so the DNATed hops to remote pods ride the
   * tunnels (SNATed to the gateway, encrypted by the kernel after NAT); the wire shows ESP and
   * not one pod address in clear. On this kernel the guard after NAT is the XFRM fallback.
   */
  @Test
  @Order(6)
  void servicesReachARemotePodEncryptedAndNeverInClear() throws Exception {
    List<String> endpoints = new ArrayList<>();
    for (String pod : podOfNode.values()) {
      java.nio.file.Files.writeString(lab.labDir().resolve("www-" + pod).resolve("who.txt"), "pod " + pod + "\n");
      endpoints.add(addressOfPod.get(pod) + ":8080");
    }
    for (int node = 1; node <= NODES; node++) {
      assertEquals(2, KernelLab.policiesByOwner(lab, node).get("guard").size(), "node" + node + "'s guard after NAT");
    }
    List<String> add = new ArrayList<>(List.of("service", "add", "kernsvc", SERVICE_IP, "80", String.valueOf(NODE_PORT)));
    add.addAll(endpoints);
    lab.lab(add.toArray(String[]::new));
    try (UnderlayCapture wire = UnderlayCapture.bridge(lab, "service")) {
      // kube-proxy prepends its jumps; each agent's firewall moves its own back above them once
      for (int node = 1; node <= NODES; node++) {
        int n = node;
        LabHarness.await(Duration.ofSeconds(60), "node" + n + "'s firewall jumps above kube-proxy's", () ->
            lab.exec(String.valueOf(n), "sh", "-c", "iptables -w -t nat -S POSTROUTING | sed -n 2p;"
                + " iptables -w -S FORWARD | sed -n 2p").stdout()
                .equals("-A POSTROUTING -m comment --comment ipsec-cni -j IPSEC-CNI-NAT\n"
                    + "-A FORWARD -m comment --comment ipsec-cni -j IPSEC-CNI-FWD\n"));
      }
      Map<String, Integer> fromOutside = serviceAnswers("outside",
          "http://" + LabHarness.address(2) + ":" + NODE_PORT + "/who.txt");
      Map<String, Integer> fromNode = serviceAnswers("1", "http://" + SERVICE_IP + "/who.txt");
      wire.stop();
      for (Map<String, Integer> answers : List.of(fromOutside, fromNode)) {
        assertEquals(SERVICE_TRIES, answers.values().stream().mapToInt(Integer::intValue).sum(),
            "every request answered: " + fromOutside + " (outside -> node2:" + NODE_PORT + "), " + fromNode
                + " (node1 -> " + SERVICE_IP + ")");
        assertEquals(new java.util.TreeSet<>(podOfNode.values()), answers.keySet(), "every pod answered some");
      }
      assertEquals(List.of(), wire.packets("net " + TunnelLab.CLUSTER_CIDR), wire.describe()
          + ": packets with a pod address in clear");
      assertTrue(!wire.packets(KernelLab.RAW_ESP + " and host " + LabHarness.address(2)).isEmpty()
          && !wire.packets(KernelLab.RAW_ESP + " and host " + LabHarness.address(1)).isEmpty(),
          wire.describe() + ": the Service's hops as raw ESP");
    } finally {
      lab.lab("service", "del", "kernsvc");
    }
    assertEquals("0", lab.lab("leaks").stdout().trim(), "the router saw no pod address");
  }

  /**
   * A host of the underlay's world (the lab's outside host) runs a real agent, configured to
   * join the lab's cluster through node1, without a certificate: its join attempt ends with a
   * cluster of its own, no node lists it, and node1's firewall counted what it sent in clear.
   */
  @Test
  @Order(7)
  void aHostWithoutACertificateCannotJoinTheCluster() throws Exception {
    Path dir = lab.labDir().resolve("rogue");
    Files.createDirectories(dir.resolve("state"));
    Files.writeString(dir.resolve("agent.json"), """
        {"nodeName": "rogue", "underlayAddress": "%s",
         "cluster": {"name": "ipsec-cni-%s", "port": %d, "eventBusPort": %d, "members": ["%s:%d"], "expectedMembers": 1},
         "services": ["ipam"], "stateDir": "%s", "api": {"address": "%s", "port": %d}}
        """.formatted(ROGUE, TunnelLab.prefix().replaceAll("-$", ""), CLUSTER_PORT, EVENT_BUS_PORT,
        LabHarness.address(1), CLUSTER_PORT, dir.resolve("state"), ROGUE, LabHarness.API_PORT));
    long droppedBefore = controlDrops(1);
    Path agent = Path.of("").toAbsolutePath().getParent().resolve("bin/ipsec-cni");
    Process rogue = new ProcessBuilder("ip", "netns", "exec", TunnelLab.prefix() + "outside", agent.toString(), "agent",
        "--config", dir.resolve("agent.json").toString())
        .redirectErrorStream(true).redirectOutput(dir.resolve("agent.log").toFile()).start();
    try {
      // its API answers once the join attempt is over
      LabHarness.await(Duration.ofSeconds(180), "the outside agent's join attempt over (its API answers)",
          () -> rogueState().isPresent() || !rogue.isAlive());
      assertTrue(rogue.isAlive(), "the outside agent runs (log " + dir.resolve("agent.log") + ")");
      JsonNode alone = rogueState().orElseThrow();
      assertEquals(List.of("rogue"), LabHarness.members(alone), "the outside agent is alone: " + alone);
      for (int node = 1; node <= NODES; node++) {
        assertEquals(List.of("node1", "node2", "node3"), LabHarness.members(lab.state(node).orElseThrow()),
            "node" + node + "'s members");
      }
      assertTrue(controlDrops(1) > droppedBefore, "node1 dropped the outside agent's connection attempts in clear");
      // its IPAM claimed a block in a cluster of its own: no lease or event of it reached ours
      String cluster = lab.exec("1", "curl", "-s", "-f", "-m", "5", "http://" + LabHarness.address(1) + ":"
          + LabHarness.API_PORT + "/cluster").orFail("node1 /cluster").stdout();
      assertTrue(cluster.contains("\"node1\"") && !cluster.contains("rogue"), "node1's view of the cluster: " + cluster);
    } finally {
      rogue.destroy();
      if (!rogue.waitFor(30, TimeUnit.SECONDS)) {
        rogue.destroyForcibly().waitFor();
      }
    }
  }

  /**
   * A node written into the denied-node file, whose certificate still carries the cluster CA:
   * within a check of the others' firewalls it is out of the control plane too (node1 and node2
   * evict it, node1 counts its dropped packets), its tunnels go, node1's and node2's pods keep
   * talking. Taken out of the file again, it merges back and the mesh is whole.
   */
  @Test
  @Order(8)
  void aDeniedNodeLosesTheControlPlaneAndItsTunnelsWhileTheOthersKeepTalking() throws Exception {
    Path denied = lab.labDir().resolve("denied-nodes");
    Files.writeString(denied, "node3\n");
    try {
      for (int node = 1; node <= 2; node++) {
        int n = node;
        LabHarness.await(Duration.ofSeconds(120), "node" + n + " has evicted the denied node3",
            () -> lab.state(n).map(LabHarness::members).orElse(List.of()).equals(List.of("node1", "node2")));
        LabHarness.await(Duration.ofSeconds(60), "node" + n + " has no tunnel to the denied node3",
            () -> !KernelLab.ikeSas(lab, n).containsKey("peer-node3"));
      }
      assertTrue(deniedDrops(1) > 0, "node1 dropped node3's control-plane packets");
      String remotePod = addressOfPod.get(podOfNode.get(2));
      LabHarness.await(Duration.ofSeconds(30), "pod on node1 -> pod on node2 while node3 is denied",
          () -> TunnelLab.pingOnce(lab, "pod-" + podOfNode.get(1), remotePod));
    } finally {
      Files.writeString(denied, "");
    }
    // node3, no longer denied, is counted again by every node
    awaitWholeCluster(RECOVERY);
  }

  /**
   * A host of the underlay's world with a certificate of another CA that names node2 (its
   * address as identity) tries to open node1's control plane, over IKE from its own charon:
   * node1 refuses it and says why, no SA with it appears, the cluster stays as it was.
   */
  @Test
  @Order(9)
  void aCertificateOfAnotherCaPosingAsANodeIsRefusedWithTheReason() throws Exception {
    // not under /run, where the lab dir is: the outside charon gets a /run of its own (its pid file)
    Path dir = Files.createTempDirectory("rogue-ike");
    Path agent = Path.of("").toAbsolutePath().getParent().resolve("bin/ipsec-cni");
    for (List<String> pki : List.of(
        List.of(agent.toString(), "pki", "init-ca", "--dir", dir.resolve("ca").toString(), "--name", "another CA"),
        List.of(agent.toString(), "pki", "issue", "--ca", dir.resolve("ca").toString(), "--node", "node2",
            "--address", LabHarness.address(2), "--out", dir.resolve("ike").toString()))) {
      Process p = new ProcessBuilder(pki).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes());
      assertEquals(0, p.waitFor(), pki + ": " + out);
    }
    Path node1Log = lab.labDir().resolve("node1/charon.log");
    long node1LinesBefore = Files.readAllLines(node1Log).size();
    Process charon = startOutsideCharon(dir);
    try {
      try (var s = dev.ipseccni.tunnel.vici.ViciSession.connect(dir.resolve("charon.vici"))) {
        s.loadKey("any", Files.readString(dir.resolve("ike/node.key")));
        s.loadCert("x509", "none", Files.readString(dir.resolve("ike/node.crt")));
        s.loadConn("pose", poseTo1As(LabHarness.address(2)));
        org.junit.jupiter.api.Assertions.assertThrows(dev.ipseccni.tunnel.vici.ViciException.class,
            () -> s.initiate("dial", "pose", 30_000), "node1 let the other CA's certificate in");
      }
      awaitLine(dir.resolve("charon.log"), 0, "the outside host's charon logs node1's AUTHENTICATION_FAILED",
          l -> l.contains("AUTHENTICATION_FAILED"));
      List<String> node1Lines = awaitLine(node1Log, node1LinesBefore, "node1's charon says why it refused the certificate",
          l -> l.contains("issuer is \"CN=another CA\""));
      assertTrue(node1Lines.stream().anyMatch(l -> l.contains("<control-any|") && l.contains("N(AUTH_FAILED)")),
          "node1 answered AUTH_FAILED: " + node1Lines);
      assertTrue(KernelLab.xfrm(lab, 1, "state").stream().noneMatch(l -> l.contains(ROGUE)), "node1 has an SA with "
          + ROGUE);
      assertAllThreeMembersEverywhere();
    } finally {
      stopOutsideCharon(charon, dir);
    }
  }

  /**
   * node3's own key and certificate (of the cluster CA: stolen, or node3's before it was
   * denied) used from the outside host: charon on node1 accepts the certificate, and node1's
   * agent terminates the control SA the moment it is up, since the identity is not the address
   * it came from (at once, without waiting for the host's answer). No SA with the host stays,
   * the cluster is as it was.
   */
  @Test
  @Order(10)
  void aNodesCertificateUsedFromAnotherHostIsCutOffAtOnce() throws Exception {
    Path dir = Files.createTempDirectory("stolen-ike");
    Path agentLog = lab.nodeDir(1).resolve("agent.log");
    long agentLinesBefore = Files.readAllLines(agentLog).size();
    Process charon = startOutsideCharon(dir);
    try {
      try (var s = dev.ipseccni.tunnel.vici.ViciSession.connect(dir.resolve("charon.vici"))) {
        s.loadKey("any", Files.readString(lab.nodeDir(3).resolve("ike/node.key")));
        s.loadCert("x509", "none", Files.readString(lab.nodeDir(3).resolve("ike/node.crt")));
        s.loadConn("pose", poseTo1As(LabHarness.address(3)));
        try {
          s.initiate("dial", "pose", 30_000);
        } catch (dev.ipseccni.tunnel.vici.ViciException cutBeforeItsChildSa) {
          // node1 may terminate the IKE SA before charon here reports the CHILD SA
        }
      }
      awaitLine(agentLog, agentLinesBefore, "node1's agent refuses the SA from " + ROGUE,
          l -> l.contains("control plane: refused IKE SA") && l.contains(ROGUE) && l.contains(LabHarness.address(3)));
      LabHarness.await(Duration.ofSeconds(30), "no SA of node1 with " + ROGUE,
          () -> KernelLab.xfrm(lab, 1, "state").stream().noneMatch(l -> l.contains(ROGUE)));
      assertAllThreeMembersEverywhere();
    } finally {
      stopOutsideCharon(charon, dir);
    }
  }

  private void assertAllThreeMembersEverywhere() {
    for (int node = 1; node <= NODES; node++) {
      assertEquals(List.of("node1", "node2", "node3"), LabHarness.members(lab.state(node).orElseThrow()),
          "node" + node + "'s members");
    }
  }

  /** A charon of the lab's outside host, its files in {@code dir}, answering on VICI. */
  private static Process startOutsideCharon(Path dir) throws Exception {
    Files.writeString(dir.resolve("strongswan.conf"), """
        charon {
          load = random nonce aes sha1 sha2 hmac gcm pem pkcs1 x509 pubkey openssl gmp curve25519 kdf kernel-netlink socket-default vici
          plugins { vici { socket = unix://%s } }
          filelog { rogue { path = %s
            flush_line = yes
            default = 1 } }
        }
        """.formatted(dir.resolve("charon.vici"), dir.resolve("charon.log")));
    Process charon = new ProcessBuilder("ip", "netns", "exec", TunnelLab.prefix() + "outside", "unshare", "-m", "sh",
        "-c", "mount -t tmpfs none /run && exec env STRONGSWAN_CONF=" + dir.resolve("strongswan.conf")
        + " /usr/lib/ipsec/charon").redirectErrorStream(true).redirectOutput(dir.resolve("charon.out").toFile()).start();
    LabHarness.await(Duration.ofSeconds(30), "the outside host's charon answers on VICI", () -> {
      try (var s = dev.ipseccni.tunnel.vici.ViciSession.connect(dir.resolve("charon.vici"))) {
        s.version();
        return true;
      } catch (IOException e) {
        return false;
      }
    });
    return charon;
  }

  private static void stopOutsideCharon(Process charon, Path dir) throws Exception {
    charon.destroy();
    if (!charon.waitFor(30, TimeUnit.SECONDS)) {
      charon.destroyForcibly().waitFor();
    }
    try (var files = Files.walk(dir)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    }
  }

  /** A connection from the outside host to node1's Hazelcast port, with {@code identity} as its IKE identity. */
  private static dev.ipseccni.tunnel.vici.ViciMessage poseTo1As(String identity) {
    var b = (java.util.function.Supplier<dev.ipseccni.tunnel.vici.ViciMessage.Builder>)
        dev.ipseccni.tunnel.vici.ViciMessage::builder;
    return b.get().put("version", 2)
        .list("local_addrs", List.of(ROGUE)).list("remote_addrs", List.of(LabHarness.address(1)))
        .put("encap", false).put("mobike", false).list("proposals", List.of("aes256gcm16-prfsha256-x25519"))
        .section("local", b.get().put("auth", "pubkey").put("id", identity).build())
        .section("remote", b.get().put("auth", "pubkey").put("id", LabHarness.address(1)).build())
        .section("children", b.get().section("dial", b.get()
            .list("local_ts", List.of(ROGUE + "/32[tcp]"))
            .list("remote_ts", List.of(LabHarness.address(1) + "/32[tcp/" + CLUSTER_PORT + "]"))
            .list("esp_proposals", List.of("aes256gcm16-x25519")).put("mode", "transport").build()).build())
        .build();
  }

  /** Waits for a line of {@code file} after its first {@code skip} lines; returns those lines. */
  private static List<String> awaitLine(Path file, long skip, String what, java.util.function.Predicate<String> line) {
    List<String> seen = new ArrayList<>();
    try {
      LabHarness.await(Duration.ofSeconds(30), what, () -> {
        List<String> lines;
        try {
          lines = Files.readAllLines(file);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
        seen.clear();
        seen.addAll(lines.subList((int) Math.min(skip, lines.size()), lines.size()));
        return seen.stream().anyMatch(line);
      });
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + "; " + file + " meanwhile:\n" + seen.stream()
          .filter(l -> l.contains(ROGUE) || l.contains("control")).collect(java.util.stream.Collectors.joining("\n")), e);
    }
    return List.copyOf(seen);
  }

  private long deniedDrops(int node) {
    String table = lab.exec(String.valueOf(node), "iptables", "-w", "-L", "IPSEC-CNI-IN", "-v", "-n", "-x")
        .orFail("node" + node + " IPSEC-CNI-IN").stdout();
    return table.lines().filter(l -> l.contains("node node3 denied"))
        .mapToLong(l -> Long.parseLong(l.trim().split("\\s+")[0])).sum();
  }

  private static final String ROGUE = "198.51.100.10";

  private Optional<JsonNode> rogueState() {
    LabHarness.Result r = lab.exec("outside", "curl", "-s", "-f", "-m", "3",
        "http://" + ROGUE + ":" + LabHarness.API_PORT + "/state");
    try {
      return r.exitCode() == 0 ? Optional.of(new ObjectMapper().readTree(r.stdout())) : Optional.empty();
    } catch (IOException e) {
      throw new AssertionError("the outside agent's /state is not JSON: " + r.stdout(), e);
    }
  }

  /** Packets node's firewall dropped on the control ports for arriving without IPsec. */
  private long controlDrops(int node) {
    String table = lab.exec(String.valueOf(node), "iptables", "-w", "-L", "IPSEC-CNI-IN", "-v", "-n", "-x")
        .orFail("node" + node + " IPSEC-CNI-IN").stdout();
    return table.lines().filter(l -> l.contains("only through IPsec"))
        .mapToLong(l -> Long.parseLong(l.trim().split("\\s+")[0])).sum();
  }

  static final int CLUSTER_PORT = 5701;
  static final int EVENT_BUS_PORT = 5702;
  static final String SERVICE_IP = "10.96.0.50";
  static final int NODE_PORT = 30980;
  /** With three endpoints picked at random, 30 requests miss one of them with a chance of 3 * (2/3)^30, 1.6e-5. */
  static final int SERVICE_TRIES = 30;

  /** SERVICE_TRIES requests from where, in one command; the pods that answered, with how often. */
  private Map<String, Integer> serviceAnswers(String where, String url) {
    String out = lab.exec(where, "sh", "-c", "for i in $(seq " + SERVICE_TRIES + "); do curl -s -m 5 " + url
        + "; echo; done").stdout();
    Map<String, Integer> answers = new java.util.TreeMap<>();
    for (String line : out.lines().toList()) {
      if (line.startsWith("pod ")) {
        answers.merge(line.substring(4).strip(), 1, Integer::sum);
      }
    }
    return answers;
  }

  /**
   * From one pod or node, a ping and a TCP request (busybox httpd) to each target
   * ({@code address=pod}), in one command: each command into a UML guest costs forks there.
   */
  private List<String> probe(String where, String who, List<String> targets) {
    String script = "for t in \"$@\"; do a=${t%%=*}; n=${t#*=};"
        + " if ping -c 1 -W 2 -q \"$a\" >/dev/null 2>&1; then echo \"ping $a ok\"; fi;"
        + " echo \"tcp $a $(curl -s -f -m 5 http://$a:8080/$n.txt)\"; done";
    List<String> command = new ArrayList<>(List.of("sh", "-c", script, "probe"));
    command.addAll(targets);
    String out = lab.exec(where, command.toArray(String[]::new)).stdout();
    List<String> failures = new ArrayList<>();
    for (String t : targets) {
      String address = t.substring(0, t.indexOf('='));
      String pod = t.substring(t.indexOf('=') + 1);
      if (!out.contains("ping " + address + " ok\n")) {
        failures.add(who + " -/-> ping " + pod + " " + address);
      }
      if (!out.contains("tcp " + address + " pod " + pod + "\n")) {
        failures.add(who + " -/-> TCP " + pod + " " + address + ":8080\n" + out);
      }
    }
    return failures;
  }
}

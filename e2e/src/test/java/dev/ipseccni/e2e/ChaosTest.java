package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ipseccni.e2e.TunnelLab.Background;
import dev.ipseccni.e2e.TunnelLab.IkeSa;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Faults on one 3-node lab, in order: the agent of node1 killed (SIGKILL) in the middle of
 * 100 concurrent CNI ADDs; node3 cut from the underlay for 30 s; node2's agent frozen
 * (SIGSTOP) for 20 s. After each, the cluster must hold exactly what the pods hold: one
 * address per pod, no address twice anywhere, no block twice, every member and tunnel
 * back. The times things took are printed as {@code BENCH chaos-…} lines (docs/reliability.md
 * collects them); none is asserted.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ChaosTest {

  static final int NODES = 3;
  static final int BURST = 100;
  /** Pods whose sandboxes the runtime "loses" after the burst: only GC can free their addresses. */
  static final int LOST_SANDBOXES = 10;
  static final Duration RECOVERY = Duration.ofMinutes(5);
  static final Duration CUT = Duration.ofSeconds(30);
  static final Duration FREEZE = Duration.ofSeconds(20);
  /** Echoes (0.2 s apart) a ping loop between two untouched nodes may lose: none is expected. */
  static final int MAX_LOST = 5;
  static final List<String> ALL = List.of("node1", "node2", "node3");

  private LabHarness lab;
  private CniLab cni;
  private JsonNode conflist;
  private final Map<Integer, String> podOfNode = new LinkedHashMap<>();
  private final Map<Integer, String> blockOfNode = new TreeMap<>();

  @BeforeAll
  void threeNodesOnePodEach() {
    lab = new LabHarness();
    cni = new CniLab(lab);
    cni.up(NODES, "{}");
    conflist = cni.conflist(1);
    for (int node = 1; node <= NODES; node++) {
      String pod = "chaos" + node;
      lab.lab("pod", "add", String.valueOf(node), pod);
      podOfNode.put(node, TunnelLab.podAddress(lab, pod));
    }
    MeshTest.awaitFullMesh(lab, NODES);
    for (int node = 1; node <= NODES; node++) {
      blockOfNode.put(node, lab.state(node).orElseThrow().path("lease").path("block").asText());
    }
    assertEquals(NODES, blockOfNode.values().stream().distinct().count(), "distinct blocks at start: " + blockOfNode);
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  private ObjectNode stdin() {
    return cni.stdin(conflist, conflist.path("cniVersion").asText());
  }

  @Test
  @Order(1)
  void agentKilledDuringHundredConcurrentAddsLeavesOneAddressPerPodAndGcNoLeak() throws Exception {
    final int node = 1;
    List<CniLab.Pod> pods = new ArrayList<>();
    for (int i = 0; i < BURST; i++) {
      pods.add(cni.newPod("burst-" + i));
    }
    Map<CniLab.Pod, CniLab.Call> first = new LinkedHashMap<>();
    AtomicInteger answered = new AtomicInteger();
    ExecutorService runtime = Executors.newFixedThreadPool(BURST);
    long burstStart = System.nanoTime();
    long killedAt;
    try {
      List<Future<CniLab.Call>> adds = new ArrayList<>();
      for (CniLab.Pod p : pods) {
        adds.add(runtime.submit(() -> {
          CniLab.Call c = cni.call(node, "ADD", p, stdin());
          if (c.exitCode() == 0) {
            answered.incrementAndGet();
          }
          return c;
        }));
      }
      // kill -9 once the first pods are wired: most of the burst is still in flight
      LabHarness.await(RECOVERY, "the first ADDs of the burst answered", () -> answered.get() >= 5);
      lab.lab("kill-agent", String.valueOf(node));
      killedAt = System.nanoTime();
      for (int i = 0; i < BURST; i++) {
        first.put(pods.get(i), adds.get(i).get());
      }
    } finally {
      runtime.shutdownNow();
    }
    long okBeforeKill = first.values().stream().filter(c -> c.exitCode() == 0).count();
    assertTrue(okBeforeKill > 0 && okBeforeKill < BURST,
        "the kill hit the burst in flight: " + okBeforeKill + " of " + BURST + " answered");

    lab.lab("start-agent", String.valueOf(node));
    long agentBack = System.nanoTime();
    // kubelet's answer to a failed sandbox: DEL it, then ADD again until it works
    Map<CniLab.Pod, CniLab.Call> last = new LinkedHashMap<>(first);
    ExecutorService retries = Executors.newFixedThreadPool(16);
    try {
      Map<CniLab.Pod, Future<CniLab.Call>> again = new LinkedHashMap<>();
      first.forEach((p, c) -> {
        if (c.exitCode() != 0) {
          again.put(p, retries.submit(() -> {
            cni.call(node, "DEL", p, stdin()).ok("DEL after the failed ADD of " + p.name());
            return cni.addRetrying(node, p, stdin(), RECOVERY).ok("retried ADD of " + p.name());
          }));
        }
      });
      for (var e : again.entrySet()) {
        last.put(e.getKey(), e.getValue().get());
      }
    } finally {
      retries.shutdownNow();
    }
    long retriedAt = System.nanoTime();

    Map<String, String> got = new LinkedHashMap<>();
    for (CniLab.Pod p : pods) {
      JsonNode result = last.get(p).json();
      assertEquals(1, result.path("ips").size(), p.name() + ": one address in its result " + result);
      got.put(p.containerId() + "/eth0", CniLab.address(result));
      List<String> inPod = lab.exec(p.where(), "ip", "-4", "-o", "addr", "show", "dev", "eth0")
          .orFail("addr of " + p.name()).stdout().lines().toList();
      assertEquals(1, inPod.size(), p.name() + " has exactly one IPv4 address: " + inPod);
      assertTrue(inPod.get(0).contains(" " + CniLab.address(result) + " "), p.name() + ": " + inPod + " vs " + result);
    }
    assertEquals(BURST, got.values().stream().distinct().count(), "no address twice in the burst: " + got);
    Map<String, String> held = cni.allocations(node);
    held.keySet().removeIf(k -> !k.startsWith("cx")); // chaos1, made by `lab pod add`, is not of the burst
    assertEquals(got, held, "IPAM holds exactly the burst, each pod at the address the pod has");
    assertNoAddressTwiceInTheCluster();

    // The runtime loses some sandboxes without a DEL reaching us; GC with the survivors frees them.
    List<CniLab.Pod> survivors = new ArrayList<>(pods.subList(LOST_SANDBOXES, BURST));
    for (CniLab.Pod p : pods.subList(0, LOST_SANDBOXES)) {
      cni.removeNamespace(p);
    }
    ObjectNode gc = cni.stdin(conflist, "1.1.0");
    ArrayNode valid = gc.putArray("cni.dev/valid-attachments");
    survivors.forEach(p -> valid.addObject().put("containerID", p.containerId()).put("ifname", "eth0"));
    // chaos1 (made by `lab pod add`) is an attachment of this node's runtime too
    String chaos1 = java.nio.file.Files.readString(lab.labDir().resolve("pods/chaos1/container-id")).trim();
    valid.addObject().put("containerID", chaos1).put("ifname", "eth0");
    Map<String, String> env = new LinkedHashMap<>(Map.of("CNI_COMMAND", "GC", "CNI_PATH", cni.cniPath,
        "CNI_CONTAINERID", "", "CNI_NETNS", "", "CNI_IFNAME", ""));
    cni.call(node, env, gc).ok("GC");
    Map<String, String> expected = new LinkedHashMap<>();
    survivors.forEach(p -> expected.put(p.containerId() + "/eth0", got.get(p.containerId() + "/eth0")));
    Map<String, String> afterGc = cni.allocations(node);
    afterGc.keySet().removeIf(k -> !k.startsWith("cx"));
    Map<String, String> leaked = new TreeMap<>(afterGc);
    leaked.keySet().removeAll(expected.keySet());
    Map<String, String> lostOrMoved = new TreeMap<>(expected);
    lostOrMoved.entrySet().removeAll(afterGc.entrySet());
    assertEquals(Map.of(), leaked, "allocations GC left behind for pods that are gone");
    assertEquals(Map.of(), lostOrMoved, "surviving pods whose allocation GC freed or changed");
    assertEquals(expected, afterGc, "after GC the allocations are exactly the surviving pods");
    assertEquals(survivors.size() + 1, cni.veths(node).size(), "one veth per surviving pod (and chaos1)");
    assertNoAddressTwiceInTheCluster();

    bench("kill-burst-answered-before-kill", okBeforeKill);
    Map<Integer, Long> exits = new TreeMap<>();
    first.values().forEach(c -> exits.merge(c.exitCode(), 1L, Long::sum));
    System.out.println("BENCH chaos-kill-burst-first-exit-codes " + exits);
    bench("kill-burst-ms-to-kill", (killedAt - burstStart) / 1_000_000);
    bench("kill-agent-restart-ms", (agentBack - killedAt) / 1_000_000);
    bench("kill-retries-done-ms-after-restart", (retriedAt - agentBack) / 1_000_000);
    bench("kill-burst-total-ms", (retriedAt - burstStart) / 1_000_000);
  }

  @Test
  @Order(2)
  void nodeCutFromTheUnderlayFor30sRejoinsWithItsBlockAndTunnels() throws Exception {
    final int cut = 3;
    String remote = podOfNode.get(2);
    String saBefore = TunnelLab.ikeSas(lab, 1).get("peer-node3").uniqueId();
    try (Background ping = Background.start(lab, "pod-chaos1", "ping", "-n", "-O", "-i", "0.2", "-W", "1", remote)) {
      LabHarness.await(Duration.ofSeconds(60), "chaos1 -> chaos2 answered", () -> replies(ping) > 0);
      underlay(cut, "-I");
      long cutAt = System.nanoTime();
      boolean healed = false;
      try {
        long evicted = awaitTimed("node1 and node2 evict node3", () -> members(1).equals(List.of("node1", "node2"))
            && members(2).equals(List.of("node1", "node2")));
        bench("cut-eviction-ms", (evicted - cutAt) / 1_000_000);
        // An ADD on the majority side during the cut gets an address of its own block.
        CniLab.Pod during = cni.newPod("during-cut");
        JsonNode r = cni.call(1, "ADD", during, stdin()).ok("ADD on node1 during the cut").json();
        assertTrue(CniLab.address(r).startsWith(blockOfNode.get(1).replace("0/24", "")), r.toString());
        int repliesAtCut = replies(ping);
        // the fault lasts 30 s: keep watching the others meanwhile
        LabHarness.await(CUT.plusSeconds(60), "30 s of cut", () -> System.nanoTime() - cutAt >= CUT.toNanos());
        assertTrue(replies(ping) >= repliesAtCut + 20, "chaos1 -> chaos2 kept answering during the cut");
        underlay(cut, "-D");
        healed = true;
      } finally {
        if (!healed) {
          underlay(cut, "-D");
        }
      }
      long healedAt = System.nanoTime();
      long membersBack = awaitTimed("3 members on every node",
          () -> members(1).equals(ALL) && members(2).equals(ALL) && members(3).equals(ALL));
      long tunnelsBack = awaitTimed("tunnels with node3 established at both ends",
          () -> TunnelLab.tunnelUp(lab, 1, 3) && TunnelLab.tunnelUp(lab, 3, 1)
              && TunnelLab.tunnelUp(lab, 2, 3) && TunnelLab.tunnelUp(lab, 3, 2));
      long podsBack = awaitTimed("chaos1 and chaos2 reach chaos3",
          () -> TunnelLab.pingOnce(lab, "pod-chaos1", podOfNode.get(3))
              && TunnelLab.pingOnce(lab, "pod-chaos2", podOfNode.get(3)));
      long readyBack = awaitTimed("node3 ready", () -> lab.state(3).map(s -> s.path("ready").asBoolean()).orElse(false));
      ping.stop();
      int lost = TunnelAgentRestartTest.lost(ping.stdout());
      bench("cut-recovery-members-ms", (membersBack - healedAt) / 1_000_000);
      bench("cut-recovery-tunnels-ms", (tunnelsBack - healedAt) / 1_000_000);
      bench("cut-recovery-pod-traffic-ms", (podsBack - healedAt) / 1_000_000);
      bench("cut-recovery-node-ready-ms", (readyBack - healedAt) / 1_000_000);
      bench("cut-lost-echoes-node1-node2", lost);
      System.out.println("BENCH chaos-cut-node1-node3-ike-sa " + saBefore + " -> "
          + TunnelLab.ikeSas(lab, 1).get("peer-node3").uniqueId());
      assertTrue(lost <= MAX_LOST, "echoes lost between the untouched nodes: " + lost);
    }
    assertBlocksUnchangedAndDistinct();
    assertNoAddressTwiceInTheCluster();
    MeshTest.awaitFullMesh(lab, NODES);
    assertEquals("0", lab.lab("leaks").stdout().trim(), "the router saw no pod address");
  }

  @Test
  @Order(3)
  void agentFrozen20sOthersKeepTunnelsAndTrafficAndItResumesCleanly() throws Exception {
    final int frozen = 2;
    Map<String, IkeSa> before = sas();
    long pid = lab.pid("agent", frozen).orElseThrow();
    try (Background toThree = Background.start(lab, "pod-chaos1", "ping", "-n", "-O", "-i", "0.2", "-W", "1",
        podOfNode.get(3));
         Background toTwo = Background.start(lab, "pod-chaos3", "ping", "-n", "-O", "-i", "0.2", "-W", "1",
             podOfNode.get(2))) {
      LabHarness.await(Duration.ofSeconds(60), "both ping loops answered", () -> replies(toThree) > 0 && replies(toTwo) > 0);
      lab.lab("pause-agent", String.valueOf(frozen));
      long stoppedAt = System.nanoTime();
      boolean resumed = false;
      try {
        long evicted = awaitTimed("node1 and node3 evict node2", () -> members(1).equals(List.of("node1", "node3"))
            && members(3).equals(List.of("node1", "node3")));
        bench("freeze-eviction-ms", (evicted - stoppedAt) / 1_000_000);
        int a = replies(toThree), b = replies(toTwo);
        LabHarness.await(FREEZE.plusSeconds(60), "20 s of freeze", () -> System.nanoTime() - stoppedAt >= FREEZE.toNanos());
        assertTrue(replies(toThree) >= a + 20 && replies(toTwo) >= b + 20, "pods kept talking while node2's agent was frozen");
        lab.lab("resume-agent", String.valueOf(frozen));
        resumed = true;
      } finally {
        if (!resumed) {
          lab.lab("resume-agent", String.valueOf(frozen));
        }
      }
      long resumedAt = System.nanoTime();
      long membersBack = awaitTimed("3 members on every node",
          () -> members(1).equals(ALL) && members(2).equals(ALL) && members(3).equals(ALL));
      long readyBack = awaitTimed("node2 ready", () -> lab.state(frozen).map(s -> s.path("ready").asBoolean()).orElse(false));
      toThree.stop();
      toTwo.stop();
      int lostThree = TunnelAgentRestartTest.lost(toThree.stdout());
      int lostTwo = TunnelAgentRestartTest.lost(toTwo.stdout());
      bench("freeze-recovery-members-ms", (membersBack - resumedAt) / 1_000_000);
      bench("freeze-recovery-ready-ms", (readyBack - resumedAt) / 1_000_000);
      bench("freeze-lost-echoes-node1-node3", lostThree);
      bench("freeze-lost-echoes-node3-node2", lostTwo);
      assertTrue(lostThree <= MAX_LOST, "echoes lost between node1 and node3: " + lostThree);
      assertTrue(lostTwo <= MAX_LOST, "echoes lost to the frozen node's pod (its charon ran on): " + lostTwo);
    }
    assertEquals(pid, lab.pid("agent", frozen).orElseThrow(), "the same agent process resumed");
    Map<String, IkeSa> after = sas();
    before.forEach((where, sa) -> assertEquals(sa.uniqueId(), after.get(where).uniqueId(),
        where + ": the same IKE SA " + sa + " -> " + after.get(where)));
    // it resumes cleanly: a new pod on it gets an address of its block and is reached from node1
    lab.lab("pod", "add", String.valueOf(frozen), "after-freeze");
    String address = TunnelLab.podAddress(lab, "after-freeze");
    assertTrue(address.startsWith(blockOfNode.get(frozen).replace("0/24", "")), address);
    LabHarness.await(RECOVERY, "chaos1 -> after-freeze", () -> TunnelLab.pingOnce(lab, "pod-chaos1", address));
    assertBlocksUnchangedAndDistinct();
    assertNoAddressTwiceInTheCluster();
    assertEquals("0", lab.lab("leaks").stdout().trim(), "the router saw no pod address");
  }

  // ------------------------------------------------------------------ helpers

  /** Drops (-I) or lets through again (-D) everything node's underlay interface sends and receives. */
  private void underlay(int node, String op) {
    lab.exec(String.valueOf(node), "iptables", "-w", "-t", "raw", op, "PREROUTING", "-i", "eth0", "-j", "DROP")
        .orFail("raw PREROUTING " + op);
    lab.exec(String.valueOf(node), "iptables", "-w", "-t", "raw", op, "OUTPUT", "-o", "eth0", "-j", "DROP")
        .orFail("raw OUTPUT " + op);
  }

  private List<String> members(int node) {
    return lab.state(node).map(LabHarness::members).orElse(List.of());
  }

  /** Polls until the condition holds; returns System.nanoTime() of the first look that saw it. */
  private static long awaitTimed(String what, BooleanSupplier condition) {
    long[] at = new long[1];
    LabHarness.await(RECOVERY, what, () -> {
      if (condition.getAsBoolean()) {
        at[0] = System.nanoTime();
        return true;
      }
      return false;
    });
    return at[0];
  }

  /** Every node still holds the block it started with, and no two hold the same one. */
  private void assertBlocksUnchangedAndDistinct() {
    Map<Integer, String> now = new TreeMap<>();
    for (int node = 1; node <= NODES; node++) {
      int n = node;
      JsonNode s = lab.awaitState(node, RECOVERY, "node" + node + " holds a lease",
          st -> !st.path("ipam").path("lease").path("block").asText().isEmpty());
      now.put(n, s.path("ipam").path("lease").path("block").asText());
    }
    assertEquals(blockOfNode, now, "every node kept its block");
    assertEquals(NODES, now.values().stream().distinct().count(), "no block twice: " + now);
  }

  /** The union of every node's IPAM allocations holds no address twice. */
  private void assertNoAddressTwiceInTheCluster() {
    Map<String, String> holder = new HashMap<>();
    List<String> twice = new ArrayList<>();
    for (int node = 1; node <= NODES; node++) {
      for (var a : cni.allocations(node).entrySet()) {
        String prev = holder.put(a.getValue(), "node" + node + " " + a.getKey());
        if (prev != null) {
          twice.add(a.getValue() + ": " + prev + " and node" + node + " " + a.getKey());
        }
      }
    }
    assertEquals(List.of(), twice, "addresses allocated twice in the cluster");
  }

  /** The IKE SAs between the two nodes that stay untouched by the freeze (node1, node3), both ends. */
  private Map<String, IkeSa> sas() {
    Map<String, IkeSa> out = new HashMap<>();
    for (int[] pair : new int[][] {{1, 3}, {3, 1}}) {
      IkeSa sa = TunnelLab.ikeSas(lab, pair[0]).get("peer-node" + pair[1]);
      assertTrue(sa != null && "ESTABLISHED".equals(sa.state()), "node" + pair[0] + " peer-node" + pair[1] + ": " + sa);
      out.put("node" + pair[0] + " peer-node" + pair[1], sa);
    }
    return out;
  }

  private static int replies(Background ping) {
    try {
      return (int) ping.stdout().lines().filter(l -> l.contains("bytes from")).count();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  private static void bench(String name, long value) {
    System.out.println("BENCH chaos-" + name + " " + value);
  }
}

package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ipseccni.e2e.TunnelLab.Background;
import dev.ipseccni.e2e.TunnelLab.IkeSa;
import java.io.IOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Restarting node2's agent (SIGTERM, start again) takes no tunnel down: charon keeps the
 * SAs, so on every node the IKE SAs with node2 keep their unique ids and stay
 * ESTABLISHED, no tunnel.down is published for a pair with node2, and a ping loop from a
 * pod on node1 to a pod on node2 loses at most a moment's worth of echoes.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TunnelAgentRestartTest {

  /** "A moment": five echoes at 0.2 s. With charon untouched none should be lost. */
  static final int MAX_LOST = 5;
  static final Duration BACK = Duration.ofSeconds(180);

  private LabHarness lab;
  private String remotePod;

  @BeforeAll
  void threeNodesTwoPods() {
    lab = new LabHarness();
    lab.lab("up", "3");
    lab.lab("pod", "add", "1", "restart1");
    lab.lab("pod", "add", "2", "restart2");
    remotePod = TunnelLab.podAddress(lab, "restart2");
    MeshTest.awaitFullMesh(lab, 3);
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void agentRestartKeepsEveryTunnelAndItsSas() throws Exception {
    Map<String, IkeSa> before = pairsWithNode2();
    long oldAgent = lab.pid("agent", 2).orElseThrow();
    try (Background ping = Background.start(lab, "pod-restart1", "ping", "-n", "-O", "-i", "0.2", "-W", "1", remotePod)) {
      LabHarness.await(Duration.ofSeconds(60), "the ping loop answered", () -> count(ping, "bytes from") > 0);
      lab.lab("stop-agent", "2");
      lab.lab("start-agent", "2");
      assertTrue(lab.pid("agent", 2).orElseThrow() != oldAgent, "a new agent process");
      lab.awaitState(2, BACK, "node2 sees its tunnels to node1 and node3 up",
          s -> upPeers(s).containsAll(List.of("node1", "node3")));
      int repliesNow = count(ping, "bytes from");
      LabHarness.await(Duration.ofSeconds(60), "ten more echoes answered after the restart",
          () -> count(ping, "bytes from") >= repliesNow + 10);
      ping.stop();
      int lost = lost(ping.stdout());
      System.out.println("BENCH agent-restart-lost-echoes " + lost);
      assertTrue(lost <= MAX_LOST, "echoes lost across the agent restart: " + lost + "\n" + ping.stdout());
    }

    Map<String, IkeSa> after = pairsWithNode2();
    assertEquals(before.keySet(), after.keySet());
    before.forEach((where, sa) -> {
      IkeSa now = after.get(where);
      assertEquals(sa.uniqueId(), now.uniqueId(), where + ": the same IKE SA (unique id) " + sa + " -> " + now);
      assertEquals("ESTABLISHED", now.state(), where);
    });

    for (int node = 1; node <= 3; node++) {
      JsonNode state = lab.state(node).orElseThrow(() -> new AssertionError("no /state"));
      List<JsonNode> downs = LabHarness.events(state, "tunnel.down").stream()
          .filter(e -> e.path("node").asText().equals("node2") || e.path("payload").path("peer").asText().equals("node2"))
          .toList();
      assertEquals(List.of(), downs, "node" + node + " saw no tunnel.down for a pair with node2");
    }
  }

  /** The IKE SAs of every pair with node2, seen from both ends: "nodeX peer-nodeY" -> SA. */
  private Map<String, IkeSa> pairsWithNode2() {
    Map<String, IkeSa> out = new HashMap<>();
    for (int[] pair : new int[][] {{1, 2}, {3, 2}, {2, 1}, {2, 3}}) {
      IkeSa sa = TunnelLab.ikeSas(lab, pair[0]).get("peer-node" + pair[1]);
      assertTrue(sa != null && sa.state().equals("ESTABLISHED"), "node" + pair[0] + " peer-node" + pair[1] + ": " + sa);
      out.put("node" + pair[0] + " peer-node" + pair[1], sa);
    }
    return out;
  }

  private static List<String> upPeers(JsonNode state) {
    return java.util.stream.StreamSupport.stream(state.path("tunnels").spliterator(), false)
        .filter(t -> t.path("state").asText().equals("up") && t.path("node").asText().equals("node2"))
        .map(t -> t.path("peer").asText()).toList();
  }

  /**
   * Echoes never answered, up to the last one answered ("no answer yet" alone is not a
   * loss: under load a reply may come after the next echo is sent).
   */
  static int lost(String pingOutput) {
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("bytes from .*icmp_seq=(\\d+)").matcher(pingOutput);
    java.util.Set<Integer> answered = new java.util.HashSet<>();
    while (m.find()) {
      answered.add(Integer.parseInt(m.group(1)));
    }
    int last = answered.stream().max(Integer::compare).orElse(0);
    return last - answered.size();
  }

  private static int count(Background ping, String what) {
    try {
      return (int) ping.stdout().lines().filter(l -> l.contains(what)).count();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }
}

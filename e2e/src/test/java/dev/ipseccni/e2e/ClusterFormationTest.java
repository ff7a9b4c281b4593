package dev.ipseccni.e2e;

import static dev.ipseccni.e2e.LabHarness.events;
import static dev.ipseccni.e2e.LabHarness.members;
import static dev.ipseccni.e2e.LabHarness.nodeName;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
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
 * Three agents, each in its own node namespace with its own charon, form one cluster over
 * the underlay; events published on one node reach the others; a hung agent is evicted
 * and comes back. No services run: this is the cluster and the bus alone.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterFormationTest {

  private static final List<String> ALL = List.of("node1", "node2", "node3");
  private static final Duration JOIN = Duration.ofSeconds(90);
  /** Eviction needs the heartbeat timeout (seconds) plus detection; generous for a loaded machine. */
  private static final Duration EVICTION = Duration.ofSeconds(90);
  /** A resumed member finds itself split off and merges back after the merge delay. */
  private static final Duration REJOIN = Duration.ofSeconds(150);

  private LabHarness lab;

  @BeforeAll
  void bringUpNodesTwoAndThreeThenOne() {
    lab = new LabHarness();
    lab.lab("up", "3", "--no-agent", "--services", "");
    // Nodes 2 and 3 first, so node 1's agent.started is published to a cluster already listening.
    lab.lab("start-agent", "2");
    lab.lab("start-agent", "3");
    for (int node : new int[] {2, 3}) {
      lab.awaitState(node, JOIN, "members [node2, node3]", s -> members(s).equals(List.of("node2", "node3")));
    }
    lab.lab("start-agent", "1");
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  @Order(1)
  void threeAgentsFormOneClusterSeenFromEveryNode() {
    for (int node = 1; node <= 3; node++) {
      JsonNode state = lab.awaitState(node, JOIN, "members " + ALL, s -> members(s).equals(ALL));
      assertEquals(nodeName(node), state.path("node").asText(), "each API answers for its own node");
    }
  }

  @Test
  @Order(2)
  void agentStartedOnNodeOneIsReceivedOnNodesTwoAndThree() {
    for (int node : new int[] {2, 3}) {
      JsonNode state = lab.awaitState(node, JOIN, "agent.started from node1",
          s -> events(s, "agent.started").stream().anyMatch(e -> e.path("node").asText().equals("node1")));
      JsonNode started = events(state, "agent.started").stream()
          .filter(e -> e.path("node").asText().equals("node1")).findFirst().orElseThrow();
      assertEquals(LabHarness.address(1), started.path("payload").path("underlayAddress").asText(),
          "node1's agent.started carries node1's underlay address");
    }
  }

  @Test
  @Order(3)
  void stoppedAgentIsEvictedAndRejoinsAfterContinue() {
    lab.awaitState(1, JOIN, "members " + ALL, s -> members(s).equals(ALL));
    long pid = lab.pid("agent", 3).orElseThrow(() -> new AssertionError("node3's agent is not running"));

    lab.lab("pause-agent", "3");
    try {
      for (int node : new int[] {1, 2}) {
        lab.awaitState(node, EVICTION, "node3 evicted (members [node1, node2])",
            s -> members(s).equals(List.of("node1", "node2")));
        lab.awaitState(node, EVICTION, "member.left for node3",
            s -> events(s, "member.left").stream().anyMatch(e -> e.path("payload").path("member").asText().equals("node3")));
      }
    } finally {
      lab.lab("resume-agent", "3");
    }

    for (int node = 1; node <= 3; node++) {
      lab.awaitState(node, REJOIN, "node3 back (members " + ALL + ")", s -> members(s).equals(ALL));
    }
    assertEquals(pid, lab.pid("agent", 3).orElseThrow(), "the same process rejoined, it was not restarted");
    assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));
  }
}

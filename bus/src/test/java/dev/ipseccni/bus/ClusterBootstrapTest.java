package dev.ipseccni.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.ClusterBootstrap.JoinedCluster;
import dev.ipseccni.bus.message.AgentEvent;
import dev.ipseccni.bus.message.ComponentStatus;
import io.vertx.core.Future;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Two real Hazelcast members on loopback, each with its own clustered Vert.x. */
class ClusterBootstrapTest {
  private static final List<String> MEMBERS = List.of("127.0.0.1:15701", "127.0.0.1:15711");
  private static JoinedCluster a;
  private static JoinedCluster b;

  private static ClusterSettings settings(String node, int port, int busPort) {
    return new ClusterSettings("bus-test", node, "127.0.0.1", port, busPort, MEMBERS, false,
        ClusterSettings.Timing.DEFAULT);
  }

  @BeforeAll
  static void formCluster() throws Exception {
    a = await(ClusterBootstrap.join(settings("node-a", 15701, 15702), List.of()));
    b = await(ClusterBootstrap.join(settings("node-b", 15711, 15712), List.of()));
  }

  @AfterAll
  static void leave() throws Exception {
    if (b != null) {
      await(b.vertx().close());
    }
    if (a != null) {
      await(a.vertx().close());
    }
  }

  private static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  @Test
  void membersAreKnownByNodeName() {
    assertEquals(List.of("node-a", "node-b"), a.membership().nodes());
    assertEquals(List.of("node-a", "node-b"), b.membership().nodes());
  }

  @Test
  void eventPublishedOnOneNodeReachesTheOtherWithItsEnvelope() throws Exception {
    CompletableFuture<Event> received = new CompletableFuture<>();
    await(b.vertx().eventBus().<Event>consumer("agent.started", m -> received.complete(m.body())).completion());
    EventPublisher publisher = new EventPublisher(a.vertx().eventBus(), "node-a", 7L);
    Event sent = publisher.publish("agent.started", new AgentEvent("0.1.0", "127.0.0.1", List.of("ipam")));
    Event got = received.get(30, TimeUnit.SECONDS);
    assertEquals(sent, got);
    assertEquals(1, got.seq());
    assertEquals("node-a", got.node());
  }

  @Test
  void sequenceNumbersGrowPerNode() {
    EventPublisher publisher = new EventPublisher(a.vertx().eventBus(), "node-a", 8L);
    long first = publisher.publish("member.joined", new dev.ipseccni.bus.message.MemberEvent("x", "y")).seq();
    long second = publisher.publish("member.joined", new dev.ipseccni.bus.message.MemberEvent("x", "y")).seq();
    assertEquals(first + 1, second);
  }

  @Test
  void requestReplyCarriesRecordsAcrossNodes() throws Exception {
    String address = Addresses.nodeStatus("node-b", Addresses.IPAM);
    await(b.vertx().eventBus().consumer(address, m -> m.reply(ComponentStatus.notReady("ipam", "no lease yet")))
        .completion());
    ComponentStatus status = await(a.vertx().eventBus().<ComponentStatus>request(address, null)).body();
    assertEquals(ComponentStatus.notReady("ipam", "no lease yet"), status);
  }

  @Test
  void hazelcastIsBoundToTheNodeAddressWithTunedFailureDetection() {
    var config = ClusterBootstrap.hazelcastConfig(settings("n", 1, 2));
    assertEquals("5", config.getProperty("hazelcast.max.no.heartbeat.seconds"));
    assertEquals("false", config.getProperty("hazelcast.socket.bind.any"));
    assertTrue(config.getAdvancedNetworkConfig().isEnabled(), "members talk on the advanced network's member endpoint");
    assertTrue(!config.getAdvancedNetworkConfig().getJoin().getMulticastConfig().isEnabled());
    assertTrue(!config.getAdvancedNetworkConfig().getJoin().getAutoDetectionConfig().isEnabled());
    assertEquals(MEMBERS, config.getAdvancedNetworkConfig().getJoin().getTcpIpConfig().getMembers());
  }
}

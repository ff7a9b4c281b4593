package dev.ipseccni.firewall;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.FirewallEvent;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.NodeBlockLease;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The verticle on a local Vert.x, its iptables run inside a namespace. */
class FirewallServiceTest {
  private static final String NODE = "node1";

  private Netns ns;
  private Vertx vertx;
  private EventPublisher publisher;
  private final BlockingQueue<Event> asserted = new LinkedBlockingQueue<>();
  private final BlockingQueue<Event> drift = new LinkedBlockingQueue<>();

  @BeforeEach
  void setUp() {
    ns = Netns.fresh("fw-svc");
    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
    publisher = new EventPublisher(vertx.eventBus(), NODE, System.currentTimeMillis());
    vertx.eventBus().<Event>consumer(Addresses.FIREWALL_ASSERTED, m -> asserted.add(m.body()));
    vertx.eventBus().<Event>consumer(Addresses.FIREWALL_DRIFT, m -> drift.add(m.body()));
  }

  @AfterEach
  void tearDown() throws Exception {
    await(vertx.close());
    ns.close();
  }

  private FirewallSettings periodicOnly(Duration interval) {
    return FirewallSettings.defaults(NODE).withCommandPrefix(ns.prefix()).withCheckInterval(interval)
        .withCommands("iptables-restore", "iptables-save", List.of());
  }

  @Test
  void assertsOnStartAndReportsReady() throws Exception {
    deploy(periodicOnly(Duration.ofSeconds(60)).withOwnBlock("10.128.1.0/24"));

    FirewallEvent event = payload(asserted.poll(10, TimeUnit.SECONDS));
    assertEquals(List.of("filter/IPSEC-CNI-FWD", "filter/IPSEC-CNI-OUT", "nat/IPSEC-CNI-NAT", "filter/IPSEC-CNI-IN",
        "nft/ip ipsec-cni guard-after-nat"), event.chains());
    assertTrue(event.repaired().contains("filter/FORWARD: jump to IPSEC-CNI-FWD missing"), event.repaired().toString());
    assertEquals(ComponentStatus.ready(Addresses.FIREWALL), status());
    assertTrue(ns.run("iptables", "-S", "FORWARD").contains("-j IPSEC-CNI-FWD"));
  }

  @Test
  void learnsTheOwnBlockFromItsLease() throws Exception {
    deploy(periodicOnly(Duration.ofSeconds(60)));
    assertNotNull(asserted.poll(10, TimeUnit.SECONDS));
    ComponentStatus before = status();
    assertFalse(before.ready());
    assertTrue(before.reason().contains("own block is not known"), before.reason());

    publisher.publish(Addresses.LEASE_ACQUIRED,
        new LeaseEvent(new NodeBlockLease("node2", "198.51.100.2", "10.128.2.0/24", 1, 0)));
    publisher.publish(Addresses.LEASE_ACQUIRED,
        new LeaseEvent(new NodeBlockLease(NODE, "198.51.100.1", "10.128.1.0/24", 1, 0)));

    assertNotNull(asserted.poll(10, TimeUnit.SECONDS));
    assertEquals(ComponentStatus.ready(Addresses.FIREWALL), status());
    assertTrue(ns.run("iptables", "-t", "nat", "-S", "IPSEC-CNI-NAT").contains("-s 10.128.1.0/24"));
    assertFalse(ns.run("iptables-save").contains("10.128.2.0/24"), "a peer's block needs no rules of its own");
  }

  @Test
  void aRestartedServiceKeepsThePodRulesInPlaceUntilItsLeaseIsKnown() throws Exception {
    String deploymentId = await(vertx.deployVerticle(new FirewallService(periodicOnly(Duration.ofSeconds(60)), publisher)));
    publisher.publish(Addresses.LEASE_ACQUIRED,
        new LeaseEvent(new NodeBlockLease(NODE, "198.51.100.1", "10.128.1.0/24", 1, 0)));
    awaitReady();
    String before = ns.run("iptables", "-S", "IPSEC-CNI-FWD");
    await(vertx.undeploy(deploymentId));

    // the agent restarts: no lease is known to the new service yet
    deploy(periodicOnly(Duration.ofSeconds(60)));
    assertFalse(status().ready(), "not ready before its own lease confirms the block");
    assertEquals(before, ns.run("iptables", "-S", "IPSEC-CNI-FWD"),
        "the pods' rules must not fall back to the guard alone while the agent restarts");
    String nat = ns.run("iptables", "-t", "nat", "-S", "IPSEC-CNI-NAT");
    assertTrue(nat.contains("-s 10.128.1.0/24"), nat);
  }

  @Test
  void periodicCheckRepairsADeletedJump() throws Exception {
    deploy(periodicOnly(Duration.ofMillis(300)).withOwnBlock("10.128.1.0/24"));
    assertNotNull(asserted.poll(10, TimeUnit.SECONDS));

    ns.run("iptables", "-D", "FORWARD", "-m", "comment", "--comment", "ipsec-cni", "-j", "IPSEC-CNI-FWD");

    FirewallEvent event = payload(drift.poll(10, TimeUnit.SECONDS));
    assertEquals(List.of("filter/FORWARD: jump to IPSEC-CNI-FWD missing"), event.repaired());
    assertTrue(ns.run("iptables", "-S", "FORWARD").contains("-j IPSEC-CNI-FWD"));
  }

  @Test
  void rulesetMonitorRepairsAFlushedChainLongBeforeThePeriodicCheck() throws Exception {
    FirewallSettings settings = FirewallSettings.defaults(NODE).withCommandPrefix(ns.prefix())
        .withCheckInterval(Duration.ofMinutes(10)).withOwnBlock("10.128.1.0/24");
    deploy(settings);
    assertNotNull(asserted.poll(10, TimeUnit.SECONDS));
    assertTrue(drift.isEmpty(), "our own restore, seen by the monitor, is no drift");

    ns.run("iptables", "-F", "IPSEC-CNI-FWD");

    FirewallEvent event = payload(drift.poll(30, TimeUnit.SECONDS));
    assertTrue(event.repaired().stream().allMatch(r -> r.startsWith("filter/IPSEC-CNI-FWD: rule missing")),
        event.repaired().toString());
    assertEquals(1 + 10, ns.run("iptables", "-S", "IPSEC-CNI-FWD").lines().count(), "-N and the ten rules");
  }

  @Test
  void missingIptablesMeansNotReadyWithTheError() throws Exception {
    deploy(periodicOnly(Duration.ofSeconds(60)).withOwnBlock("10.128.1.0/24")
        .withCommands("/nonexistent/iptables-restore", "/nonexistent/iptables-save", List.of()));

    ComponentStatus status = status();
    assertFalse(status.ready());
    assertTrue(status.reason().contains("/nonexistent/iptables-save"), status.reason());
    assertTrue(asserted.isEmpty());
  }

  @Test
  void badSettingsFailTheDeploymentWithEveryError() {
    FirewallSettings bad = periodicOnly(Duration.ofMillis(1)).withOwnBlock("10.200.0.0/24");
    Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
        () -> deploy(bad));
    assertTrue(e.getMessage().contains("check interval") && e.getMessage().contains("not inside"), e.getMessage());
  }

  private void deploy(FirewallSettings settings) throws Exception {
    await(vertx.deployVerticle(new FirewallService(settings, publisher)));
  }

  private void awaitReady() throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!status().ready()) {
      assertTrue(System.nanoTime() < deadline, "not ready before the deadline: " + status());
      TimeUnit.MILLISECONDS.sleep(50); // poll interval
    }
  }

  private ComponentStatus status() throws Exception {
    return await(vertx.eventBus().<ComponentStatus>request(Addresses.nodeStatus(NODE, Addresses.FIREWALL), ""))
        .body();
  }

  private static FirewallEvent payload(Event event) {
    assertNotNull(event, "no event before the deadline");
    return (FirewallEvent) event.payload();
  }

  private static <T> T await(Future<T> future) throws Exception {
    try {
      return future.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      throw e.getCause() instanceof Exception cause ? cause : e;
    }
  }
}

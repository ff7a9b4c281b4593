package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.TestPorts;
import dev.ipseccni.bus.message.AddressEvent;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.CheckRequest;
import dev.ipseccni.bus.message.Failures;
import dev.ipseccni.bus.message.GcRequest;
import dev.ipseccni.bus.message.GcResult;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.bus.message.ReleaseRequest;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.eventbus.ReplyException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A node that lost its block (another node holds it now, as after a partition longer than the
 * grace) on a real Hazelcast member: it claims a new block, and its pods that kept addresses
 * of the lost one are reported, not kept silently: CHECK fails with 103 naming the address and
 * the block, an event per pod, a gauge counting them; new pods get addresses of the new block
 * only; DEL and GC end an orphan.
 */
class OrphanedPodsTest {
  private static final String NET = "ipsec-cni";
  private static final String LOST = "10.128.9.0/24";
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final List<Event> events = new CopyOnWriteArrayList<>();
  private static final SimpleMeterRegistry meters = new SimpleMeterRegistry();
  private static ClusterBootstrap.JoinedCluster member;
  private static IpamService service;

  @BeforeAll
  static void start() throws Exception {
    Metrics.globalRegistry.add(meters);
    Path journals = Files.createTempDirectory("ipt-orphans");
    int port = TestPorts.free();
    member = IpamServiceTest.await(ClusterBootstrap.join(
        new ClusterSettings("ipt-orphans-" + UUID.randomUUID(), "ipt-o", "127.0.0.1", port, 0,
            List.of("127.0.0.1:" + port), false, ClusterSettings.Timing.DEFAULT),
        List.of(BlockLeases.customizer(1))));
    for (String address : Addresses.EVENTS) {
      member.vertx().eventBus().<Event>consumer(address, m -> events.add(m.body()));
    }
    service = new IpamService(IpamSettings.defaults("ipt-o", "127.0.0.1", NET, 1)
        .withJournalDir(journals.resolve("ipt-o")).withPreferredBlock(LOST)
        .withTimings(Duration.ofMillis(300), Duration.ofSeconds(60), Duration.ofMillis(200)),
        new EventPublisher(member.vertx().eventBus(), "ipt-o", 1), member.hazelcast());
    IpamServiceTest.await(member.vertx().deployVerticle(service));
  }

  @AfterAll
  static void stop() throws Exception {
    if (member != null) {
      IpamServiceTest.await(member.vertx().close());
    }
    Metrics.globalRegistry.remove(meters);
    meters.close();
  }

  private static <T> Future<T> request(String address, Object body) {
    return member.vertx().eventBus().<T>request(address, body).map(m -> m.body());
  }

  private static Future<Allocation> add(String container) {
    return request(Addresses.ipamAllocate("ipt-o"), new AllocateRequest(NET, container, "eth0"));
  }

  private static Future<Allocation> check(String container) {
    return request(Addresses.ipamCheck("ipt-o"), new CheckRequest(NET, container, "eth0"));
  }

  private static double gauge() {
    return meters.get(IpamService.ORPHANED_GAUGE).tag("node", "ipt-o").gauge().value();
  }

  private static Set<String> orphanedEvents() {
    return events.stream().filter(e -> e.address().equals(Addresses.ADDRESS_ORPHANED))
        .map(e -> ((AddressEvent) e.payload()).containerId()).collect(Collectors.toSet());
  }

  @Test
  void podsOfALostBlockFailCheckUntilDeletedAndNoAddressServesTwoPods() throws Exception {
    Poll.until("ipam ready", Duration.ofSeconds(60), () -> service.view().ready(), () -> service.view().toString());
    Allocation c1 = IpamServiceTest.await(add("c1"));
    Allocation c2 = IpamServiceTest.await(add("c2"));
    assertEquals(LOST, c1.block());
    assertEquals(0.0, gauge(), "no orphan while the block is ours");

    // another node takes the block over, as the majority side does once our lease is past its grace
    NodeBlockLease ours = service.view().lease().orElseThrow();
    member.hazelcast().<String, String>getMap(BlockLeases.LEASE_MAP).put(LOST, BlockLeases.encode(
        new NodeBlockLease("ipt-thief", "127.0.0.9", LOST, ours.epoch() + 1, System.currentTimeMillis())));

    Poll.until("CHECK of c1 failing with 103", WAIT, () -> {
      try {
        IpamServiceTest.await(check("c1"));
        return false;
      } catch (java.util.concurrent.ExecutionException e) {
        return e.getCause() instanceof ReplyException r && r.failureCode() == Failures.ADDRESS_NO_LONGER_OURS;
      } catch (Exception e) {
        throw new AssertionError(e);
      }
    });
    ReplyException failed = IpamServiceTest.failure(check("c2"));
    assertEquals(Failures.ADDRESS_NO_LONGER_OURS, failed.failureCode());
    assertTrue(failed.getMessage().contains(c2.address()) && failed.getMessage().contains(LOST), failed.getMessage());
    Poll.until("the node on a new block", WAIT, () -> service.view().lease().isPresent());
    String block = service.view().lease().orElseThrow().block();
    assertNotEquals(LOST, block);
    Poll.until("an address.orphaned event per pod", WAIT, () -> orphanedEvents().equals(Set.of("c1", "c2")),
        () -> orphanedEvents().toString());
    assertEquals(2.0, gauge());

    Allocation n1 = IpamServiceTest.await(add("n1"));
    assertEquals(block, n1.block(), "a new pod gets an address of the new block, never one of the lost block");

    assertNull(IpamServiceTest.await(request(Addresses.ipamRelease("ipt-o"), new ReleaseRequest(NET, "c1", "eth0"))),
        "the orphan's release frees nothing of ours");
    assertEquals(Failures.UNKNOWN_CONTAINER, IpamServiceTest.failure(check("c1")).failureCode(),
        "once deleted, the orphan is gone");
    assertEquals(1.0, gauge());

    GcResult gc = IpamServiceTest.await(request(Addresses.ipamGc("ipt-o"),
        new GcRequest(NET, List.of(new GcRequest.Attachment("n1", "eth0")))));
    assertEquals(List.of(), gc.released(), "GC ends the orphan c2 without releasing any address of ours");
    assertEquals(Failures.UNKNOWN_CONTAINER, IpamServiceTest.failure(check("c2")).failureCode());
    assertEquals(0.0, gauge());
    assertEquals(n1, IpamServiceTest.await(check("n1")));
  }
}

package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.IpPrefix;
import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.TestPorts;
import dev.ipseccni.bus.message.AddressEvent;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.CheckRequest;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.Failures;
import dev.ipseccni.bus.message.GcRequest;
import dev.ipseccni.bus.message.GcResult;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.ReleaseRequest;
import io.vertx.core.Future;
import io.vertx.core.eventbus.ReplyException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The verticle on a real Hazelcast cluster of two members in this JVM, expecting two
 * members: before the second joins no block can be claimed.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class IpamServiceTest {
  private static final String CLUSTER = "ipt-svc-" + UUID.randomUUID();
  private static final String NET = "ipsec-cni";
  private static ClusterBootstrap.JoinedCluster first;
  private static ClusterBootstrap.JoinedCluster second;
  private static Path journalRoot;
  private static IpamService service;
  private static final List<Event> events = new CopyOnWriteArrayList<>();


  static IpamSettings settings(String node, int expected) {
    return IpamSettings.defaults(node, "127.0.0.1", NET, expected)
        .withJournalDir(journalRoot.resolve(node))
        .withTimings(Duration.ofMillis(500), Duration.ofSeconds(60), Duration.ofMillis(200));
  }

  static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  static ReplyException failure(Future<?> future) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> await(future));
    return (ReplyException) e.getCause();
  }

  @BeforeAll
  static void startCluster() throws Exception {
    journalRoot = Files.createTempDirectory("ipt-ipam-svc");
    int p1 = TestPorts.free();
    int p2 = TestPorts.free();
    List<String> members = List.of("127.0.0.1:" + p1, "127.0.0.1:" + p2);
    first = await(ClusterBootstrap.join(new ClusterSettings(CLUSTER, "ipt-a", "127.0.0.1", p1, 0, members, false,
        ClusterSettings.Timing.DEFAULT), List.of(BlockLeases.customizer(2))));
    for (String address : Addresses.EVENTS) {
      first.vertx().eventBus().<Event>consumer(address, m -> events.add(m.body()));
    }
    service = new IpamService(settings("ipt-a", 2).withPreferredBlock("10.128.7.0/24"),
        new EventPublisher(first.vertx().eventBus(), "ipt-a", 1), first.hazelcast());
    await(first.vertx().deployVerticle(service));
  }

  @AfterAll
  static void stopCluster() throws Exception {
    for (ClusterBootstrap.JoinedCluster c : new ClusterBootstrap.JoinedCluster[] {second, first}) {
      if (c != null) {
        await(c.vertx().close());
      }
    }
  }

  private static <T> Future<T> request(String address, Object body) {
    return first.vertx().eventBus().<T>request(address, body).map(m -> m.body());
  }

  private static ComponentStatus status() throws Exception {
    return await(request(Addresses.nodeStatus("ipt-a", Addresses.IPAM), "status"));
  }

  private static Future<Allocation> add(String container) {
    return request(Addresses.ipamAllocate("ipt-a"), new AllocateRequest(NET, container, "eth0"));
  }

  @Test
  @Order(1)
  void addFailsWithTryAgainLaterUntilAMajorityIsPresent() throws Exception {
    Poll.until("a claim attempt", Duration.ofSeconds(30), () -> service.view().reason().contains("majority"),
        () -> service.view().toString());
    ComponentStatus status = status();
    assertFalse(status.ready());
    assertTrue(status.reason().contains("(2 of 2 expected members)"), status.reason());
    assertEquals(Failures.TRY_AGAIN_LATER, failure(add("c-early")).failureCode());

    int p2 = Integer.parseInt(first.hazelcast().getConfig().getAdvancedNetworkConfig().getJoin().getTcpIpConfig()
        .getMembers().get(1).split(":")[1]);
    second = await(ClusterBootstrap.join(new ClusterSettings(CLUSTER, "ipt-b", "127.0.0.1", p2, 0,
        first.hazelcast().getConfig().getAdvancedNetworkConfig().getJoin().getTcpIpConfig().getMembers(), false,
        ClusterSettings.Timing.DEFAULT), List.of(BlockLeases.customizer(2))));
    Poll.until("ipam ready", Duration.ofSeconds(60), () -> service.view().ready(), () -> service.view().toString());
    assertTrue(status().ready());
    assertEquals("10.128.7.0/24", service.view().lease().orElseThrow().block(), "the preferred block");
    Poll.until("lease.acquired event", Duration.ofSeconds(10),
        () -> events.stream().anyMatch(e -> e.address().equals(Addresses.LEASE_ACQUIRED)
            && ((LeaseEvent) e.payload()).lease().block().equals("10.128.7.0/24")));
    Poll.until("lease.renewed event", Duration.ofSeconds(10),
        () -> events.stream().anyMatch(e -> e.address().equals(Addresses.LEASE_RENEWED)));
  }

  @Test
  @Order(2)
  void addTwiceReturnsSameAddressFromTheOwnBlock() throws Exception {
    Allocation a = await(add("c1"));
    assertEquals(new Allocation(NET, "c1", "eth0", "10.128.7.2/24", "10.128.7.1", "10.128.7.0/24"), a);
    assertEquals(a, await(add("c1")));
    Poll.until("address.allocated event", Duration.ofSeconds(10),
        () -> events.stream().filter(e -> e.address().equals(Addresses.ADDRESS_ALLOCATED))
            .map(e -> (AddressEvent) e.payload()).filter(p -> p.containerId().equals("c1")).count() == 1);
    Poll.until("the allocation mirrored to the cluster", Duration.ofSeconds(10),
        () -> second.hazelcast().getMap(BlockLeases.ADDRESS_MAP).containsKey("10.128.7.2"));
  }

  @Test
  @Order(3)
  void checkReportsWhetherTheAllocationExists() throws Exception {
    Allocation a = await(add("c2"));
    assertEquals(a, await(request(Addresses.ipamCheck("ipt-a"), new CheckRequest(NET, "c2", "eth0"))));
    assertEquals(Failures.UNKNOWN_CONTAINER,
        failure(request(Addresses.ipamCheck("ipt-a"), new CheckRequest(NET, "nope", "eth0"))).failureCode());
  }

  @Test
  @Order(4)
  void delIsIdempotentAndPublishesTheRelease() throws Exception {
    Allocation a = await(add("c3"));
    assertEquals(a, await(request(Addresses.ipamRelease("ipt-a"), new ReleaseRequest(NET, "c3", "eth0"))),
        "the release answers with what it released");
    assertNull(await(request(Addresses.ipamRelease("ipt-a"), new ReleaseRequest(NET, "c3", "eth0"))),
        "a repeated release has nothing to answer with");
    assertEquals(Failures.UNKNOWN_CONTAINER,
        failure(request(Addresses.ipamCheck("ipt-a"), new CheckRequest(NET, "c3", "eth0"))).failureCode());
    Poll.until("address.released event", Duration.ofSeconds(10),
        () -> events.stream().filter(e -> e.address().equals(Addresses.ADDRESS_RELEASED))
            .map(e -> (AddressEvent) e.payload()).filter(p -> p.address().equals(a.address())).count() == 1);
    Poll.until("the mirror entry removed", Duration.ofSeconds(10),
        () -> !first.hazelcast().getMap(BlockLeases.ADDRESS_MAP).containsKey(a.address().split("/")[0]));
  }

  @Test
  @Order(5)
  void gcReleasesWhatIsNotInTheValidList() throws Exception {
    await(add("g1"));
    await(add("g2"));
    GcResult result = await(request(Addresses.ipamGc("ipt-a"), new GcRequest(NET, List.of(
        new GcRequest.Attachment("g2", "eth0"), new GcRequest.Attachment("c1", "eth0")))));
    Set<String> released = new HashSet<>(result.released().stream().map(Allocation::containerId).toList());
    assertEquals(Set.of("g1", "c2"), released);
    assertEquals(Set.of("c1", "g2"),
        new HashSet<>(service.view().allocations().stream().map(Allocation::containerId).toList()));
  }

  @Test
  @Order(6)
  void badRequestIsRejectedWithItsReason() {
    ReplyException e = failure(request(Addresses.ipamAllocate("ipt-a"), new AllocateRequest(NET, "", "eth0")));
    assertEquals(Failures.INVALID_REQUEST, e.failureCode());
  }

  @Test
  @Order(7)
  void exhaustedPoolFailsWithNodeBlockAndSize() throws Exception {
    // A second logical node with /28 blocks, on the same cluster: 13 pod addresses.
    IpamService small = new IpamService(settings("ipt-small", 2).withNetwork("10.128.0.0/16", 28),
        new EventPublisher(first.vertx().eventBus(), "ipt-small", 1), first.hazelcast());
    // A different cut of the CIDR with live leases is refused at start.
    ExecutionException refused = assertThrows(ExecutionException.class,
        () -> await(first.vertx().deployVerticle(small)));
    assertTrue(refused.getCause().getMessage().contains("refusing to change the cluster CIDR"),
        refused.getCause().getMessage());

    IpamService other = new IpamService(settings("ipt-c", 2),
        new EventPublisher(first.vertx().eventBus(), "ipt-c", 1), first.hazelcast());
    await(second.vertx().deployVerticle(other));
    Poll.until("second node ready", Duration.ofSeconds(30), () -> other.view().ready());
    String block = other.view().lease().orElseThrow().block();
    assertFalse(block.equals("10.128.7.0/24"));
    List<Future<Allocation>> all = new java.util.ArrayList<>();
    for (int i = 0; i < 253; i++) {
      all.add(second.vertx().eventBus().<Allocation>request(Addresses.ipamAllocate("ipt-c"),
          new AllocateRequest(NET, "x" + i, "eth0")).map(m -> m.body()));
    }
    Set<String> addresses = new HashSet<>();
    for (Future<Allocation> f : all) {
      assertTrue(addresses.add(await(f).address()));
    }
    ReplyException e = failure(second.vertx().eventBus().request(Addresses.ipamAllocate("ipt-c"),
        new AllocateRequest(NET, "one-too-many", "eth0")));
    assertEquals(Failures.POOL_EXHAUSTED, e.failureCode());
    assertTrue(e.getMessage().contains("ipt-c") && e.getMessage().contains(block) && e.getMessage().contains("253"),
        e.getMessage());
  }

  @Test
  @Order(8)
  void requestedAddressIsGivenExactlyOrRefusedWithWhyAndWhere() throws Exception {
    Future<Allocation> asked = request(Addresses.ipamAllocate("ipt-a"), new AllocateRequest(NET, "r1", "eth0",
        "10.128.7.99"));
    Allocation a = await(asked);
    assertEquals(new Allocation(NET, "r1", "eth0", "10.128.7.99/24", "10.128.7.1", "10.128.7.0/24"), a);
    assertEquals(a, await(request(Addresses.ipamAllocate("ipt-a"), new AllocateRequest(NET, "r1", "eth0",
        "10.128.7.99"))), "the same ADD again is idempotent");
    Poll.until("the requested allocation mirrored to the cluster", Duration.ofSeconds(10),
        () -> second.hazelcast().getMap(BlockLeases.ADDRESS_MAP).containsKey("10.128.7.99"));

    ReplyException inUse = failure(request(Addresses.ipamAllocate("ipt-a"),
        new AllocateRequest(NET, "r2", "eth0", "10.128.7.99")));
    assertEquals(Failures.REQUESTED_ADDRESS_UNAVAILABLE, inUse.failureCode());
    assertTrue(inUse.getMessage().contains("10.128.7.99 is already used by container r1"), inUse.getMessage());

    ReplyException different = failure(request(Addresses.ipamAllocate("ipt-a"),
        new AllocateRequest(NET, "r1", "eth0", "10.128.7.98")));
    assertEquals(Failures.REQUESTED_ADDRESS_UNAVAILABLE, different.failureCode());
    assertTrue(different.getMessage().contains("already holds 10.128.7.99"), different.getMessage());

    // ipt-c (deployed above) holds a block of its own: the refusal says where the address belongs.
    String otherBlock = await(service.clusterLeases()).values().stream().filter(l -> l.node().equals("ipt-c"))
        .findFirst().orElseThrow().block();
    String theirs = IpPrefix.parse(otherBlock).addressAt(20);
    ReplyException outside = failure(request(Addresses.ipamAllocate("ipt-a"),
        new AllocateRequest(NET, "r3", "eth0", theirs)));
    assertEquals(Failures.REQUESTED_ADDRESS_UNAVAILABLE, outside.failureCode());
    assertTrue(outside.getMessage().contains(theirs + " is outside 10.128.7.0/24, the block node ipt-a holds")
        && outside.getMessage().contains("held by node ipt-c"), outside.getMessage());

    ReplyException reserved = failure(request(Addresses.ipamAllocate("ipt-a"),
        new AllocateRequest(NET, "r3", "eth0", "10.128.7.1")));
    assertEquals(Failures.REQUESTED_ADDRESS_UNAVAILABLE, reserved.failureCode());
    assertTrue(reserved.getMessage().contains("gateway"), reserved.getMessage());

    ReplyException garbage = failure(request(Addresses.ipamAllocate("ipt-a"),
        new AllocateRequest(NET, "r3", "eth0", "10.128.7.x")));
    assertEquals(Failures.INVALID_REQUEST, garbage.failureCode());
    assertTrue(service.view().allocations().stream().noneMatch(x -> x.containerId().equals("r2")
        || x.containerId().equals("r3")), "nothing allocated to a refused request");
  }
}

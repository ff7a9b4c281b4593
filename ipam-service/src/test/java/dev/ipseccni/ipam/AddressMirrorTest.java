package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.map.IMap;
import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.IpPrefix;
import dev.ipseccni.bus.JsonRecordCodec;
import dev.ipseccni.bus.TestPorts;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.ReleaseRequest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The cluster's address mirror is written in batches: allocations and releases of one
 * delay window reach it together, the last operation on an address wins, a batch that
 * fails is written once the cluster can take it, and stop() writes what is left.
 * Services of several logical nodes share one real Hazelcast member; the failure case
 * has a cluster of its own.
 */
class AddressMirrorTest {
  private static final String NET = "ipsec-cni";
  /** Longer than any test: only stop() writes what such a service collected. */
  private static final Duration NEVER = Duration.ofMinutes(10);
  private static final DeliveryOptions LOCAL = new DeliveryOptions().setLocalOnly(true);
  private static final Logger SERVICE_LOG = Logger.getLogger(IpamService.class.getName());
  private static final List<String> logged = new CopyOnWriteArrayList<>();
  private static final Handler CAPTURE = new Handler() {
    private final SimpleFormatter formatter = new SimpleFormatter();

    @Override
    public void publish(LogRecord record) {
      logged.add(record.getLevel() + " " + formatter.formatMessage(record));
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  };

  private static ClusterBootstrap.JoinedCluster cluster;
  private static Path journals;
  private final List<ClusterBootstrap.JoinedCluster> ownClusters = new ArrayList<>();

  @BeforeAll
  static void startMember() throws Exception {
    SERVICE_LOG.addHandler(CAPTURE);
    journals = Files.createTempDirectory("ipt-ipam-mirror");
    int port = TestPorts.free();
    cluster = IpamServiceTest.await(ClusterBootstrap.join(new ClusterSettings("ipt-mirror-" + UUID.randomUUID(),
        "ipt-mirror", "127.0.0.1", port, 0, List.of("127.0.0.1:" + port), false, ClusterSettings.Timing.DEFAULT),
        List.of(BlockLeases.customizer(1))));
  }

  @AfterAll
  static void stopMember() throws Exception {
    SERVICE_LOG.removeHandler(CAPTURE);
    if (cluster != null) {
      IpamServiceTest.await(cluster.vertx().close());
    }
  }

  @AfterEach
  void stopOwnClusters() throws Exception {
    for (ClusterBootstrap.JoinedCluster c : ownClusters) {
      IpamServiceTest.await(c.vertx().close());
    }
  }

  /** A running service of its own node; the mirror's first batch (the resync after the claim) is written. */
  private static Deployed deploy(ClusterBootstrap.JoinedCluster on, String node, Duration mirrorDelay)
      throws Exception {
    IpamService service = new IpamService(IpamSettings.defaults(node, "127.0.0.1", NET, 1)
        .withJournalDir(journals.resolve(node))
        // renewals an hour apart: no re-claim, so no resync writes the mirror during a test
        .withTimings(Duration.ofHours(1), Duration.ofHours(4), Duration.ofMillis(200))
        .withMirrorDelay(mirrorDelay),
        new EventPublisher(on.vertx().eventBus(), node, 1), on.hazelcast());
    String id = IpamServiceTest.await(on.vertx().deployVerticle(service));
    Poll.until(node + " ready", Duration.ofSeconds(30), () -> service.view().ready(), () -> service.view().toString());
    Poll.until(node + "'s resync written", Duration.ofSeconds(30), () -> service.mirrorFlushes() >= 1);
    return new Deployed(on, node, service, id, IpPrefix.parse(service.view().lease().orElseThrow().block()));
  }

  private record Deployed(ClusterBootstrap.JoinedCluster on, String node, IpamService service, String id,
                          IpPrefix block) {
    Future<Allocation> add(String container, String requested) {
      return on.vertx().eventBus().<Allocation>request(Addresses.ipamAllocate(node),
          new AllocateRequest(NET, container, "eth0", requested), LOCAL).map(m -> m.body());
    }

    Future<Allocation> add(String container) {
      return add(container, "");
    }

    Allocation release(String container) throws Exception {
      return IpamServiceTest.await(on.vertx().eventBus().<Allocation>request(Addresses.ipamRelease(node),
          new ReleaseRequest(NET, container, "eth0"), LOCAL).map(m -> m.body()));
    }

    void stop() throws Exception {
      IpamServiceTest.await(on.vertx().undeploy(id));
    }
  }

  private static IMap<String, String> mirror(ClusterBootstrap.JoinedCluster on) {
    return on.hazelcast().getMap(BlockLeases.ADDRESS_MAP);
  }

  private static MirroredAllocation entry(ClusterBootstrap.JoinedCluster on, String bareAddress) {
    String json = mirror(on).get(bareAddress);
    return json == null ? null : JsonRecordCodec.fromJson(json.getBytes(StandardCharsets.UTF_8),
        MirroredAllocation.class);
  }

  private static String bare(Allocation a) {
    return a.address().split("/")[0];
  }

  @Test
  void burstOfAllocationsReachesTheMirrorInAFewBatches() throws Exception {
    Deployed d = deploy(cluster, "am-burst", IpamSettings.DEFAULT_MIRROR_DELAY);
    long before = d.service().mirrorFlushes();
    List<Future<Allocation>> burst = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      burst.add(d.add("burst-" + i));
    }
    List<String> addresses = new ArrayList<>();
    for (Future<Allocation> f : burst) {
      addresses.add(bare(IpamServiceTest.await(f)));
    }
    Poll.until("all 50 allocations mirrored", Duration.ofSeconds(30),
        () -> mirror(cluster).getAll(new java.util.HashSet<>(addresses)).size() == 50);
    for (String address : addresses) {
      assertEquals("am-burst", entry(cluster, address).node(), address);
    }
    long batches = d.service().mirrorFlushes() - before;
    assertTrue(batches >= 1 && batches <= 10, "50 allocations took " + batches + " batches, not a few");
    d.stop();
  }

  @Test
  void allocateThenReleaseInOneWindowLeavesNoEntry() throws Exception {
    Deployed d = deploy(cluster, "am-gone", NEVER);
    Allocation a = IpamServiceTest.await(d.add("short-lived"));
    assertEquals(a, d.release("short-lived"));
    assertNull(mirror(cluster).get(bare(a)), "nothing is written before the window ends");
    d.stop();
    assertNull(mirror(cluster).get(bare(a)), "the release cancels the allocation of the same window");
  }

  @Test
  void releaseThenReallocationToAnotherContainerLeavesTheNewOne() throws Exception {
    // Within one window: the old container's allocation and release, then the new one's.
    Deployed d = deploy(cluster, "am-reuse", NEVER);
    String address = d.block().addressAt(50);
    IpamServiceTest.await(d.add("old", address));
    d.release("old");
    IpamServiceTest.await(d.add("new", address));
    d.stop();
    assertEquals("new", entry(cluster, address).allocation().containerId());

    // Across windows: the old allocation is in the mirror already when it is released.
    Deployed e = deploy(cluster, "am-reuse2", Duration.ofMillis(100));
    String second = e.block().addressAt(50);
    IpamServiceTest.await(e.add("old", second));
    Poll.until("the old container mirrored", Duration.ofSeconds(10), () -> entry(cluster, second) != null);
    e.release("old");
    IpamServiceTest.await(e.add("new", second));
    long after = e.service().mirrorFlushes();
    Poll.until("the new container mirrored", Duration.ofSeconds(10),
        () -> entry(cluster, second) != null && entry(cluster, second).allocation().containerId().equals("new"));
    // Whatever order the two landed in, the later batch left it alone: the release removes
    // only the old container's entry.
    Poll.until("a batch after the new allocation", Duration.ofSeconds(10), () -> e.service().mirrorFlushes() > after);
    assertEquals("new", entry(cluster, second).allocation().containerId());
    e.stop();
    assertEquals("new", entry(cluster, second).allocation().containerId());
  }

  @Test
  void addressHeldByAnotherNodeIsLoggedAsDuplicate() throws Exception {
    Deployed d = deploy(cluster, "am-dup", Duration.ofMillis(100));
    String address = d.block().addressAt(60);
    Allocation theirs = new Allocation(NET, "elsewhere", "eth0", address + "/24", d.block().addressAt(1),
        d.block().toString());
    mirror(cluster).put(address, new String(JsonRecordCodec.toJson(new MirroredAllocation("am-other", theirs)),
        StandardCharsets.UTF_8));
    Allocation ours = IpamServiceTest.await(d.add("here", address));
    // System.Logger's ERROR is java.util.logging's SEVERE
    String line = "SEVERE duplicate pod address " + ours.address() + ": allocated on node am-other and on node am-dup";
    Poll.until("the duplicate logged", Duration.ofSeconds(10), () -> logged.contains(line), logged::toString);
    Poll.until("this node's entry written", Duration.ofSeconds(10),
        () -> entry(cluster, address).node().equals("am-dup"));
    d.stop();
  }

  @Test
  void stopWritesWhatIsPending() throws Exception {
    Deployed d = deploy(cluster, "am-stop", NEVER);
    List<String> addresses = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      addresses.add(bare(IpamServiceTest.await(d.add("stop-" + i))));
    }
    assertTrue(mirror(cluster).getAll(new java.util.HashSet<>(addresses)).isEmpty(),
        "nothing is written before the window ends");
    d.stop();
    for (String address : addresses) {
      assertEquals("am-stop", entry(cluster, address).node(), address + " written at stop");
    }
  }

  /**
   * A real failure: the service runs on a lite member, and the only data member leaves,
   * so every map operation fails (no member can own a partition). The batch of that time
   * is kept; a new data member joins and the next attempt writes it. The lease is not
   * renewed within the test, so no resync can be what writes it.
   */
  @Test
  void failedBatchIsKeptAndWrittenOnceTheClusterCanTakeIt() throws Exception {
    String name = "ipt-mirror-fail-" + UUID.randomUUID();
    int dataPort = TestPorts.free();
    int litePort = TestPorts.free();
    List<String> members = List.of("127.0.0.1:" + dataPort, "127.0.0.1:" + litePort);
    ClusterBootstrap.JoinedCluster data = IpamServiceTest.await(ClusterBootstrap.join(new ClusterSettings(name,
        "am-data", "127.0.0.1", dataPort, 0, members, false, ClusterSettings.Timing.DEFAULT),
        List.of(BlockLeases.customizer(1))));
    ClusterBootstrap.JoinedCluster lite = IpamServiceTest.await(ClusterBootstrap.join(new ClusterSettings(name,
        "am-lite", "127.0.0.1", litePort, 0, members, true, ClusterSettings.Timing.DEFAULT),
        List.of(BlockLeases.customizer(1))));
    ownClusters.add(lite);
    Deployed d = deploy(lite, "am-lite", Duration.ofMillis(200));

    IpamServiceTest.await(data.vertx().close());
    Poll.until("the data member gone", Duration.ofSeconds(30),
        () -> lite.hazelcast().getCluster().getMembers().size() == 1);
    List<String> addresses = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      addresses.add(bare(IpamServiceTest.await(d.add("kept-" + i))));
    }
    Poll.until("the failed batch logged", Duration.ofSeconds(30),
        () -> logged.stream().anyMatch(l -> l.startsWith("WARNING node am-lite: mirror of ")
            && l.contains(" failed (kept for the next attempt)")), logged::toString);
    long written = d.service().mirrorFlushes();

    ClusterBootstrap.JoinedCluster rejoined = IpamServiceTest.await(ClusterBootstrap.join(new ClusterSettings(name,
        "am-data2", "127.0.0.1", dataPort, 0, members, false, ClusterSettings.Timing.DEFAULT),
        List.of(BlockLeases.customizer(1))));
    ownClusters.add(0, rejoined);
    Poll.until("the kept batch written", Duration.ofSeconds(60),
        () -> mirror(rejoined).getAll(new java.util.HashSet<>(addresses)).size() == 3,
        () -> mirror(rejoined).keySet() + " " + logged);
    for (String address : addresses) {
      assertEquals("am-lite", entry(rejoined, address).node(), address);
    }
    assertTrue(d.service().mirrorFlushes() > written);
    assertTrue(logged.contains("INFO node am-lite: address mirror written again"), logged.toString());
    assertFalse(d.service().view().lease().isEmpty(), "the lease was held throughout: no re-claim, no resync");
    d.stop();
  }
}

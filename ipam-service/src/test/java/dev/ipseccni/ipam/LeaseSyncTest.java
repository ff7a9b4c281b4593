package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.PeerView;
import dev.ipseccni.bus.TestPorts;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.LeaseSync;
import dev.ipseccni.bus.message.NodeBlockLease;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * How a late or a behind observer learns the leases: a service that starts after the lease
 * was announced asks again and gets it (lease.sync); a peer view that missed a release is
 * corrected from the cluster's lease map (lease.snapshot).
 */
class LeaseSyncTest {
  private ClusterBootstrap.JoinedCluster node;

  /** One member; renewals an hour apart, so a lease event seen during a test is an answer, not a renewal. */
  private ClusterBootstrap.JoinedCluster member(String name) throws Exception {
    int port = TestPorts.free();
    node = IpamServiceTest.await(ClusterBootstrap.join(
        new ClusterSettings("ipt-" + name + "-" + UUID.randomUUID(), name, "127.0.0.1", port, 0,
            List.of("127.0.0.1:" + port), false, ClusterSettings.Timing.DEFAULT),
        List.of(BlockLeases.customizer(1))));
    return node;
  }

  private IpamService ipam(String name) throws Exception {
    IpamSettings settings = IpamSettings.defaults(name, "127.0.0.1", "ipsec-cni", 1)
        .withJournalDir(Files.createTempDirectory(name))
        .withTimings(Duration.ofHours(1), Duration.ofHours(4), Duration.ofMillis(200))
        .withPreferredBlock("10.128.9.0/24");
    IpamService service = new IpamService(settings, new EventPublisher(node.vertx().eventBus(), name, 1),
        node.hazelcast());
    IpamServiceTest.await(node.vertx().deployVerticle(service));
    Poll.until("lease held", Duration.ofSeconds(30), () -> service.view().ready(), () -> service.view().toString());
    return service;
  }

  @AfterEach
  void leave() throws Exception {
    if (node != null) {
      IpamServiceTest.await(node.vertx().close());
    }
  }

  @Test
  void leaseSyncIsAnsweredWithTheHeldLease() throws Exception {
    member("ipt-s");
    List<Event> renewed = new CopyOnWriteArrayList<>();
    IpamServiceTest.await(node.vertx().eventBus()
        .<Event>consumer(Addresses.LEASE_RENEWED, m -> renewed.add(m.body())).completion());
    ipam("ipt-s");
    assertEquals(List.of(), renewed);

    new EventPublisher(node.vertx().eventBus(), "ipt-other", 1).publish(Addresses.LEASE_SYNC, new LeaseSync("tunnel"));
    Poll.until("lease re-announced", Duration.ofSeconds(10), () -> !renewed.isEmpty(), renewed::toString);
    assertEquals("10.128.9.0/24", ((LeaseEvent) renewed.get(0).payload()).lease().block());
    assertEquals("ipt-s", renewed.get(0).node());
  }

  /** Dropping what the map no longer holds is the snapshot's doing alone: no event removes a lease. */
  @Test
  void aMissedReleaseIsDroppedAndAMissedLeaseAddedFromTheClusterMap() throws Exception {
    member("ipt-snap");
    NodeBlockLease held = ipam("ipt-snap").view().lease().orElseThrow();

    // a view that believes node-gone still holds a block: its release was missed
    PeerView view = new PeerView("observer", Duration.ofHours(4));
    view.offer(new NodeBlockLease("node-gone", "127.0.0.9", "10.128.77.0/24", 1, System.currentTimeMillis() - 1_000));
    AtomicReference<List<NodeBlockLease>> seen = new AtomicReference<>(List.of());
    CompletableFuture<PeerView.Follower> following = new CompletableFuture<>();
    node.vertx().runOnContext(v -> following.complete(PeerView.follow(node.vertx(),
        new EventPublisher(node.vertx().eventBus(), "observer", 1), "test", view, Duration.ofMillis(200),
        change -> seen.set(view.leases()))));
    PeerView.Follower follower = following.get();
    try {
      Poll.until("the view equal to the cluster map", Duration.ofSeconds(30),
          () -> seen.get().stream().map(NodeBlockLease::block).toList().equals(List.of(held.block())),
          () -> seen.get().toString());
      assertEquals(List.of("ipt-snap"), seen.get().stream().map(NodeBlockLease::node).toList());
    } finally {
      node.vertx().runOnContext(v -> follower.close());
    }
  }
}

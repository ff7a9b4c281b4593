package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.PeerView;
import dev.ipseccni.bus.message.NodeBlockLease;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A peer view that missed a release is corrected by the cluster's lease map: IPAM answers
 * the snapshot request with what the map holds, and the view's follower drops what the map
 * no longer holds and adds what it missed, with no lease event at all.
 */
class LeaseSnapshotTest {

  @Test
  void aMissedReleaseIsDroppedAndAMissedLeaseAddedFromTheClusterMap() throws Exception {
    int port = IpamServiceTest.freePort();
    ClusterBootstrap.JoinedCluster node = IpamServiceTest.await(ClusterBootstrap.join(
        new ClusterSettings("ipt-snap-" + UUID.randomUUID(), "ipt-snap", "127.0.0.1", port, 0,
            List.of("127.0.0.1:" + port), false, ClusterSettings.Timing.DEFAULT),
        List.of(BlockLeases.customizer(1))));
    try {
      IpamSettings settings = IpamSettings.defaults("ipt-snap", "127.0.0.1", "ipsec-cni", 1)
          .withJournalDir(Files.createTempDirectory("ipt-snap"))
          .withTimings(Duration.ofHours(1), Duration.ofHours(4), Duration.ofMillis(200))
          .withPreferredBlock("10.128.9.0/24");
      IpamService service = new IpamService(settings, new EventPublisher(node.vertx().eventBus(), "ipt-snap", 1),
          node.hazelcast());
      IpamServiceTest.await(node.vertx().deployVerticle(service));
      Poll.until("lease held", Duration.ofSeconds(30), () -> service.view().ready(), () -> service.view().toString());
      NodeBlockLease held = service.view().lease().orElseThrow();

      // a view that believes node-gone still holds a block: its release was missed
      PeerView view = new PeerView("observer", Duration.ofHours(4));
      view.offer(new NodeBlockLease("node-gone", "127.0.0.9", "10.128.77.0/24", 1, System.currentTimeMillis() - 1_000));
      AtomicReference<List<NodeBlockLease>> seen = new AtomicReference<>(List.of());
      CompletableFuture<PeerView.Follower> following = new CompletableFuture<>();
      // the follower's own LEASE_SYNC would bring the held lease back, but never drop node-gone
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
    } finally {
      IpamServiceTest.await(node.vertx().close());
    }
  }
}

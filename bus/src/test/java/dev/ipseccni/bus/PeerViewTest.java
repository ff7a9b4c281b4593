package dev.ipseccni.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ipseccni.bus.PeerView.Change;
import dev.ipseccni.bus.message.NodeBlockLease;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class PeerViewTest {
  private static final Duration GRACE = Duration.ofMinutes(10);
  private static final long T = 1_000_000_000L;
  private final java.util.concurrent.atomic.AtomicLong now = new java.util.concurrent.atomic.AtomicLong(T);
  private final PeerView view = new PeerView("node1", GRACE, now::get);

  private static NodeBlockLease lease(String node, String block, long epoch, long renewedAt) {
    return new NodeBlockLease(node, "192.0.2." + node.substring(4), block, epoch, renewedAt);
  }

  @Test
  void renewalIsNotAShapeChange() {
    assertEquals(Change.SHAPE, view.offer(lease("node2", "10.128.2.0/24", 1, T)));
    assertEquals(Change.RENEWAL, view.offer(lease("node2", "10.128.2.0/24", 1, T + 30_000)));
    assertEquals(Change.NONE, view.offer(lease("node2", "10.128.2.0/24", 1, T + 30_000)));
    assertEquals(Change.NONE, view.offer(lease("node2", "10.128.2.0/24", 1, T)), "an older renewal seen late");
    assertEquals(List.of(lease("node2", "10.128.2.0/24", 1, T + 30_000)), view.leases());
  }

  @Test
  void oneLeasePerBlockTheHighestEpochWins() {
    view.offer(lease("node3", "10.128.3.0/24", 1, T));
    // node3 was cut off past the grace; node4 took its block; node3's release was never seen here
    now.set(T + 700_000);
    assertEquals(Change.SHAPE, view.offer(lease("node4", "10.128.3.0/24", 2, T + 700_000)));
    assertEquals(List.of(lease("node4", "10.128.3.0/24", 2, T + 700_000)), view.leases());
    // a late renewal of the old claim does not bring it back
    assertEquals(Change.NONE, view.offer(lease("node3", "10.128.3.0/24", 1, T + 710_000)));
    assertEquals(List.of("node4"), view.leases().stream().map(NodeBlockLease::node).toList());
  }

  @Test
  void oneLeasePerNodeItsLatest() {
    view.offer(lease("node3", "10.128.3.0/24", 1, T));
    now.set(T + 300_000);
    assertEquals(Change.SHAPE, view.offer(lease("node3", "10.128.9.0/24", 1, T + 300_000)), "node3 claimed anew");
    assertEquals(List.of(lease("node3", "10.128.9.0/24", 1, T + 300_000)), view.leases());
    assertEquals(Change.NONE, view.offer(lease("node3", "10.128.3.0/24", 1, T + 1)), "its past, seen late");
    assertEquals(1, view.leases().size());
  }

  @Test
  void leaseNotRenewedWithinTheGraceLeavesByItself() {
    view.offer(lease("node2", "10.128.2.0/24", 1, T));
    view.offer(lease("node3", "10.128.3.0/24", 1, T + 60_000));
    now.set(T + GRACE.toMillis());
    assertEquals(Change.NONE, view.expire());
    now.set(T + GRACE.toMillis() + 1);
    assertEquals(Change.SHAPE, view.expire());
    assertEquals(List.of("node3"), view.leases().stream().map(NodeBlockLease::node).toList());
    assertEquals(Change.NONE, view.offer(lease("node2", "10.128.2.0/24", 1, T)), "a late event of the outlived lease");
    // renewed after all (the cluster had not reclaimed it): back
    assertEquals(Change.SHAPE, view.offer(lease("node2", "10.128.2.0/24", 1, T + GRACE.toMillis() + 1)));
  }

  @Test
  void theOwnLeaseDoesNotExpireItsIpamSaysWhenItIsLost() {
    view.offer(lease("node1", "10.128.1.0/24", 1, T));
    now.set(T + 10 * GRACE.toMillis());
    assertEquals(Change.NONE, view.expire());
    assertEquals(Optional.of(lease("node1", "10.128.1.0/24", 1, T)), view.own());
    assertEquals(Change.SHAPE, view.release(lease("node1", "10.128.1.0/24", 1, T)));
    assertEquals(Optional.empty(), view.own());
  }

  @Test
  void epochsNeverGoBackwardsAReleasedClaimSeenLateIsIgnored() {
    view.offer(lease("node2", "10.128.2.0/24", 3, T));
    assertEquals(Change.SHAPE, view.release(lease("node2", "10.128.2.0/24", 3, T)));
    assertEquals(Optional.of(3L), view.releasedEpoch("10.128.2.0/24"));
    assertEquals(Change.NONE, view.offer(lease("node2", "10.128.2.0/24", 3, T + 1)), "renewal in flight at the release");
    assertEquals(Change.NONE, view.offer(lease("node2", "10.128.2.0/24", 2, T + 2)), "an older claim");
    assertEquals(List.of(), view.leases());
    assertEquals(Change.SHAPE, view.offer(lease("node5", "10.128.2.0/24", 4, T + 3)), "the next claim");
  }

  @Test
  void releaseOfAnOlderClaimKeepsTheNewerOne() {
    view.offer(lease("node4", "10.128.3.0/24", 2, T));
    assertEquals(Change.NONE, view.release(lease("node3", "10.128.3.0/24", 1, T - 1)));
    assertEquals(List.of("node4"), view.leases().stream().map(NodeBlockLease::node).toList());
  }

  @Test
  void snapshotAddsWhatWasMissedAndDropsWhatTheClusterNoLongerHolds() {
    view.offer(lease("node1", "10.128.1.0/24", 1, T));
    view.offer(lease("node2", "10.128.2.0/24", 1, T));           // released meanwhile, release missed
    view.offer(lease("node6", "10.128.6.0/24", 1, T + 5_000));   // acquired after the snapshot was read
    Change change = view.resync(List.of(lease("node1", "10.128.1.0/24", 1, T),
        lease("node3", "10.128.3.0/24", 1, T + 1_000)), T + 2_000);
    assertEquals(Change.SHAPE, change);
    assertEquals(List.of("node1", "node3", "node6"), view.leases().stream().map(NodeBlockLease::node).toList());
    assertEquals(Change.NONE, view.resync(List.of(lease("node1", "10.128.1.0/24", 1, T),
        lease("node3", "10.128.3.0/24", 1, T + 1_000), lease("node6", "10.128.6.0/24", 1, T + 5_000)), T + 6_000));
  }

  @Test
  void theOwnLeaseIsNotDroppedByASnapshot() {
    view.offer(lease("node1", "10.128.1.0/24", 1, T));
    view.resync(List.of(), T + 1);
    assertEquals(Optional.of(lease("node1", "10.128.1.0/24", 1, T)), view.own());
  }
}

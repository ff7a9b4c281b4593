package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.IpPrefix;
import dev.ipseccni.bus.TestPorts;
import dev.ipseccni.bus.message.NodeBlockLease;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * On a real Hazelcast member: the epoch of a block grows every time the block changes
 * hands, also across a release (expired, or a node leaving for good), because the release
 * leaves a tombstone; a released block is free again and nobody sees the tombstone as a lease.
 */
class BlockEpochTest {
  private static final Duration GRACE = Duration.ofMillis(200);
  private static final String BLOCK = "10.128.5.0/24";
  private static final List<IpPrefix> HINT = List.of(IpPrefix.parse(BLOCK));
  private static ClusterBootstrap.JoinedCluster member;
  private static BlockLeases leases;

  @BeforeAll
  static void join() throws Exception {
    int port = TestPorts.free();
    member = IpamServiceTest.await(ClusterBootstrap.join(
        new ClusterSettings("ipt-epoch-" + UUID.randomUUID(), "ipt-e", "127.0.0.1", port, 0,
            List.of("127.0.0.1:" + port), false, ClusterSettings.Timing.DEFAULT),
        List.of(BlockLeases.customizer(1))));
    leases = new BlockLeases(member.hazelcast(), NodeBlocks.of("10.128.0.0/16", 24), GRACE);
  }

  @AfterAll
  static void leave() throws Exception {
    IpamServiceTest.await(member.vertx().close());
  }

  /** Polls the wall clock (what the lease's grace is measured with) until the lease is older than the grace. */
  private static void expire(NodeBlockLease lease) {
    Poll.until("lease of " + lease.node() + " past its grace", Duration.ofSeconds(10),
        () -> System.currentTimeMillis() - lease.renewedAtMillis() > GRACE.toMillis() + 1);
  }

  /** What a split-brain merge keeps of a block's two values (seen in the lab: put-if-absent kept epoch 1 over 2). */
  @Test
  void aMergeKeepsTheHigherEpoch() {
    String stale = BlockLeases.encode(new NodeBlockLease("node3", "192.0.2.13", BLOCK, 1, 5_000));
    String taken = BlockLeases.encode(new NodeBlockLease("node4", "192.0.2.14", BLOCK, 2, 1_000));
    String released = BlockLeases.tombstone(new NodeBlockLease("node4", "192.0.2.14", BLOCK, 2, 1_000));
    String renewed = BlockLeases.encode(new NodeBlockLease("node4", "192.0.2.14", BLOCK, 2, 2_000));
    assertTrue(BlockLeases.HigherEpochWins.newer(taken, stale), "a later claim over an older, more recently renewed one");
    assertFalse(BlockLeases.HigherEpochWins.newer(stale, taken));
    assertTrue(BlockLeases.HigherEpochWins.newer(released, taken), "the release of a claim over the claim");
    assertFalse(BlockLeases.HigherEpochWins.newer(taken, released));
    assertTrue(BlockLeases.HigherEpochWins.newer(released, stale), "a tombstone keeps its epoch against older claims");
    assertTrue(BlockLeases.HigherEpochWins.newer(renewed, taken), "of one claim, the later renewal");
    assertEquals(BlockLeases.HigherEpochWins.class.getName(), member.hazelcast().getConfig()
        .getMapConfig(BlockLeases.LEASE_MAP).getMergePolicyConfig().getPolicy(), "the lease map merges with it");
  }

  /**
   * Right after a split-brain merge the members of the half that merged in work on the other
   * half's entries before their own are merged in (seen in the lab: node4's renewal answered
   * with node3's epoch-1 lease of the block node4 held at epoch 2, and node4 gave the block up).
   * An older epoch is a stale copy, not a take-over: the renewal puts the holder's lease back.
   */
  @Test
  void aRenewalThatMeetsAnOlderEpochKeepsTheBlock() {
    String block = "10.128.6.0/24";
    NodeBlockLease held = new NodeBlockLease("node4", "192.0.2.14", block, 2, System.currentTimeMillis());
    writeRaw(block, BlockLeases.encode(new NodeBlockLease("node3", "192.0.2.13", block, 1, 5_000)));
    NodeBlockLease renewed = leases.renew(held);
    assertEquals("node4", renewed.node(), "an epoch-1 copy does not take node4's epoch-2 block");
    assertEquals(2, renewed.epoch());
    assertEquals(renewed, leases.get(block).orElseThrow());

    writeRaw(block, BlockLeases.tombstone(new NodeBlockLease("node3", "192.0.2.13", block, 1, 5_000)));
    assertEquals(2, leases.renew(held).epoch(), "a tombstone older than the claim does not move its epoch");

    writeRaw(block, BlockLeases.encode(new NodeBlockLease("node5", "192.0.2.15", block, 2, 5_000)));
    assertEquals("node5", leases.renew(held).node(), "another's lease at the holder's epoch is a take-over");
    writeRaw(block, BlockLeases.encode(new NodeBlockLease("node5", "192.0.2.15", block, 3, 5_000)));
    assertEquals("node5", leases.renew(held).node(), "and so is one at a later epoch");
  }

  /** Puts a lease-map value as it is (split-brain protection counts the member in only after its first heartbeat). */
  private static void writeRaw(String block, String value) {
    Poll.until("a majority for a write", Duration.ofSeconds(60), () -> {
      try {
        member.hazelcast().<String, String>getMap(BlockLeases.LEASE_MAP).set(block, value);
        return true;
      } catch (com.hazelcast.splitbrainprotection.SplitBrainProtectionException notYet) {
        return false;
      }
    });
  }

  @Test
  void epochsNeverGoBackwardsAcrossReleases() throws Exception {
    // split-brain protection counts the member in only after its first heartbeat
    NodeBlockLease[] claimed = new NodeBlockLease[1];
    Poll.until("a majority for the first claim", Duration.ofSeconds(60), () -> {
      try {
        claimed[0] = leases.claim("node-a", "192.0.2.1", HINT);
        return true;
      } catch (com.hazelcast.splitbrainprotection.SplitBrainProtectionException notYet) {
        return false;
      } catch (Exception e) {
        throw new AssertionError(e);
      }
    });
    NodeBlockLease a = claimed[0];
    assertEquals(BLOCK, a.block());
    long first = a.epoch();

    expire(a);
    assertEquals(List.of(a.node()), leases.releaseExpired().stream().map(NodeBlockLease::node).toList());
    assertTrue(leases.get(BLOCK).isEmpty(), "a released block holds no lease");
    assertFalse(leases.all().containsKey(BLOCK), "the tombstone is not a lease");
    assertEquals(first, leases.releasedEpoch(BLOCK).orElseThrow());

    NodeBlockLease b = leases.claim("node-b", "192.0.2.2", HINT);
    assertEquals(BLOCK, b.block(), "the released block is free again");
    assertEquals(first + 1, b.epoch(), "a claim after the release continues the epochs");

    assertTrue(leases.release("node-b", BLOCK), "node-b leaves for good");
    NodeBlockLease c = leases.claim("node-c", "192.0.2.3", HINT);
    assertEquals(first + 2, c.epoch());

    // a former holder renewing late does not get its old epoch back
    expire(c);
    leases.releaseExpired();
    NodeBlockLease renewed = leases.renew(c);
    assertEquals("node-c", renewed.node());
    assertEquals(first + 3, renewed.epoch(), "a lease put back after its release is a new claim");
    assertEquals(renewed, leases.get(BLOCK).orElseThrow());
  }
}

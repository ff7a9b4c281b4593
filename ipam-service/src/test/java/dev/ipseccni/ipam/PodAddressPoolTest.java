package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class PodAddressPoolTest {
  private final NodeBlocks blocks = NodeBlocks.of("10.128.0.0/16", 24);
  private final IpPrefix block = IpPrefix.parse("10.128.5.0/24");

  private static AllocationKey key(int i) {
    return new AllocationKey("net", "c" + i, "eth0");
  }

  @Test
  void firstAddressIsAfterTheGateway() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    assertEquals("10.128.5.2", block.addressAt(pool.allocate(key(0))));
  }

  @Test
  void addTwiceReturnsSameAddress() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    long first = pool.allocate(key(1));
    pool.allocate(key(2));
    assertEquals(first, pool.allocate(key(1)));
    assertEquals(2, pool.size());
  }

  @Test
  void exhaustionNamesNodeBlockAndSizeAndNeverHandsOutReservedAddresses() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    Set<Long> seen = new HashSet<>();
    for (int i = 0; i < 253; i++) {
      long offset = pool.allocate(key(i));
      assertTrue(offset >= 2 && offset <= 254, "offset " + offset);
      assertTrue(seen.add(offset), "duplicate " + offset);
    }
    PoolExhaustedException e = assertThrows(PoolExhaustedException.class, () -> pool.allocate(key(999)));
    assertTrue(e.getMessage().contains("n1") && e.getMessage().contains("10.128.5.0/24")
        && e.getMessage().contains("253"), e.getMessage());
    // An existing key still gets its address from a full pool.
    assertEquals(2, pool.allocate(key(0)));
  }

  @Test
  void releasedAddressGoesToTheBackOfTheLine() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    long a = pool.allocate(key(1));
    pool.allocate(key(2));
    pool.release(key(1));
    long c = pool.allocate(key(3));
    assertEquals(a + 2, c, "the freed .2 must not be reused while later addresses are free");
  }

  @Test
  void cursorWrapsAroundToFreedAddresses() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    for (int i = 0; i < 253; i++) {
      pool.allocate(key(i));
    }
    pool.release(key(10)); // offset 12
    pool.release(key(5));  // offset 7
    assertEquals(7, pool.allocate(key(1000)), "after .254 the search wraps to the lowest free");
    assertEquals(12, pool.allocate(key(1001)));
    assertThrows(PoolExhaustedException.class, () -> pool.allocate(key(1002)));
  }

  @Test
  void releaseOfUnknownKeyIsANoOp() {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    assertTrue(pool.release(key(1)).isEmpty());
  }

  @Test
  void restoreRefusesConflictsAndReservedOffsets() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    assertTrue(pool.restore(key(1), 40));
    assertEquals(false, pool.restore(key(2), 40));
    assertEquals(false, pool.restore(key(3), 1));
    assertEquals(false, pool.restore(key(3), 255));
    pool.restoreCursor(40);
    assertEquals(41, pool.allocate(key(4)));
  }
}

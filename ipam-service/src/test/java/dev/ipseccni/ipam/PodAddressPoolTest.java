package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
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

  @Test
  void requestedAddressIsGivenExactlyAndLeavesTheCursorWhereItWas() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    assertEquals("10.128.5.2", block.addressAt(pool.allocate(key(0))));
    assertEquals(77, pool.allocateRequested(key(1), "10.128.5.77"));
    assertEquals(77, pool.allocateRequested(key(1), "10.128.5.77"), "the same request again is no change");
    assertEquals(2, pool.size());
    assertEquals("10.128.5.3", block.addressAt(pool.allocate(key(2))), "round-robin continues after .2");
  }

  @Test
  void roundRobinPassesOverARequestedAddress() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    pool.allocateRequested(key(1), "10.128.5.2");
    assertEquals("10.128.5.3", block.addressAt(pool.allocate(key(2))));
  }

  @Test
  void requestedAddressIsRefusedWithTheReason() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    pool.allocateRequested(key(1), "10.128.5.9");
    Map<String, RequestedAddressException.Reason> refused = new LinkedHashMap<>();
    refused.put("10.128.6.9", RequestedAddressException.Reason.OUTSIDE_BLOCK);
    refused.put("fd00::9", RequestedAddressException.Reason.OUTSIDE_BLOCK);
    refused.put("10.128.5.0", RequestedAddressException.Reason.RESERVED);
    refused.put("10.128.5.1", RequestedAddressException.Reason.RESERVED);
    refused.put("10.128.5.255", RequestedAddressException.Reason.RESERVED);
    refused.put("10.128.5.9", RequestedAddressException.Reason.IN_USE);
    Map<String, String> messages = new LinkedHashMap<>();
    refused.forEach((address, reason) -> {
      RequestedAddressException e = assertThrows(RequestedAddressException.class,
          () -> pool.allocateRequested(key(2), address), address);
      assertEquals(reason, e.reason(), address + ": " + e.getMessage());
      assertTrue(e.getMessage().contains(address) && e.getMessage().contains("node n1"), e.getMessage());
      messages.put(address, e.getMessage());
    });
    assertTrue(messages.get("10.128.6.9").contains("outside 10.128.5.0/24, the block node n1 holds"),
        messages.get("10.128.6.9"));
    assertTrue(messages.get("10.128.5.0").contains("network address"), messages.get("10.128.5.0"));
    assertTrue(messages.get("10.128.5.1").contains("gateway address"), messages.get("10.128.5.1"));
    assertTrue(messages.get("10.128.5.255").contains("broadcast address"), messages.get("10.128.5.255"));
    assertTrue(messages.get("10.128.5.9").contains("already used by container c1 (interface eth0"),
        messages.get("10.128.5.9"));
    assertEquals(1, pool.size(), "nothing was allocated to the refused key");
    assertTrue(pool.offsetOf(key(2)).isEmpty());
    assertThrows(IllegalArgumentException.class, () -> pool.allocateRequested(key(2), "10.128.5.x"));
  }

  @Test
  void keyAskingForADifferentAddressThanItHoldsIsRefusedAndKeepsItsOwn() throws Exception {
    PodAddressPool pool = new PodAddressPool("n1", block, blocks);
    long held = pool.allocate(key(1));
    RequestedAddressException e = assertThrows(RequestedAddressException.class,
        () -> pool.allocateRequested(key(1), "10.128.5.50"));
    assertEquals(RequestedAddressException.Reason.DIFFERENT_ADDRESS_HELD, e.reason());
    assertTrue(e.getMessage().contains("net/c1/eth0 already holds 10.128.5.2, not the requested 10.128.5.50"),
        e.getMessage());
    assertEquals(held, pool.offsetOf(key(1)).orElseThrow());
    assertEquals(held, pool.allocateRequested(key(1), "10.128.5.2"), "asking for the address it holds is fine");
  }
}

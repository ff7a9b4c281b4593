package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The pod addresses of one node block, in memory. Addresses are handed out round-robin:
 * a cursor walks the block and wraps, so a released address is reused only after every
 * other free one was used (a stale address is not handed to the next pod at once).
 * Not thread-safe: {@link NodeAllocations} serialises access.
 */
final class PodAddressPool {
  private final String node;
  private final IpPrefix block;
  private final long firstOffset;
  private final long lastOffset;
  private final long broadcastOffset;
  private final Map<AllocationKey, Long> byKey = new LinkedHashMap<>();
  private final Map<Long, AllocationKey> byOffset = new HashMap<>();
  /** The offset handed out last; the next search starts after it. */
  private long cursor;

  PodAddressPool(String node, IpPrefix block, NodeBlocks blocks) {
    this.node = node;
    this.block = block;
    this.firstOffset = NodeBlocks.FIRST_POD_OFFSET;
    this.lastOffset = blocks.lastPodOffset();
    this.broadcastOffset = blocks.blockSize() - 1;
    this.cursor = lastOffset;
  }

  IpPrefix block() {
    return block;
  }

  long capacity() {
    return lastOffset - firstOffset + 1;
  }

  int size() {
    return byKey.size();
  }

  long cursor() {
    return cursor;
  }

  Optional<Long> offsetOf(AllocationKey key) {
    return Optional.ofNullable(byKey.get(key));
  }

  /** The offset of {@code key}: the one it already has, or the next free one after the cursor. */
  long allocate(AllocationKey key) throws PoolExhaustedException {
    Long existing = byKey.get(key);
    if (existing != null) {
      return existing;
    }
    if (byKey.size() >= capacity()) {
      throw new PoolExhaustedException("node " + node + ": block " + block + " is exhausted, all "
          + capacity() + " pod addresses are allocated");
    }
    long candidate = cursor;
    do {
      candidate = candidate >= lastOffset ? firstOffset : candidate + 1;
    } while (byOffset.containsKey(candidate));
    put(key, candidate);
    cursor = candidate;
    return candidate;
  }

  /**
   * Gives {@code key} exactly {@code address} (a bare address literal), or says why not. The
   * key's own address again is no change; the round-robin cursor does not move, so a requested
   * address does not shift where the next unrequested one comes from.
   *
   * @throws IllegalArgumentException when {@code address} is not an IP address literal
   */
  long allocateRequested(AllocationKey key, String address) throws RequestedAddressException {
    IpPrefix.parseAddress(address);
    Long existing = byKey.get(key);
    long offset;
    try {
      offset = block.offsetOf(address);
    } catch (IllegalArgumentException e) {
      offset = -1;
    }
    if (existing != null) {
      if (existing == offset) {
        return existing;
      }
      throw new RequestedAddressException(RequestedAddressException.Reason.DIFFERENT_ADDRESS_HELD, address,
          "node " + node + ": " + key + " already holds " + block.addressAt(existing) + ", not the requested "
              + address + "; an interface keeps its address until DEL");
    }
    if (offset < 0) {
      throw new RequestedAddressException(RequestedAddressException.Reason.OUTSIDE_BLOCK, address,
          "node " + node + ": requested address " + address + " is outside " + block
              + ", the block node " + node + " holds");
    }
    if (offset < firstOffset || offset > lastOffset) {
      String role = offset == 0 ? "network address" : offset == broadcastOffset ? "broadcast address"
          : offset == NodeBlocks.GATEWAY_OFFSET ? "gateway address (the bridge's own)" : "reserved address";
      throw new RequestedAddressException(RequestedAddressException.Reason.RESERVED, address,
          "node " + node + ": requested address " + address + " is reserved: it is the " + role + " of block "
              + block);
    }
    AllocationKey holder = byOffset.get(offset);
    if (holder != null) {
      throw new RequestedAddressException(RequestedAddressException.Reason.IN_USE, address,
          "node " + node + ": requested address " + address + " is already used by container "
              + holder.containerId() + " (interface " + holder.ifName() + ", network " + holder.network() + ")");
    }
    put(key, offset);
    return offset;
  }

  /** Releases the key's address; returns it, or empty when the key held none. */
  Optional<Long> release(AllocationKey key) {
    Long offset = byKey.remove(key);
    if (offset != null) {
      byOffset.remove(offset);
    }
    return Optional.ofNullable(offset);
  }

  /** Re-installs an allocation read from the journal; false when it conflicts with what is there. */
  boolean restore(AllocationKey key, long offset) {
    if (offset < firstOffset || offset > lastOffset) {
      return false;
    }
    AllocationKey holder = byOffset.get(offset);
    if (holder != null && !holder.equals(key)) {
      return false;
    }
    Long previous = byKey.get(key);
    if (previous != null && previous != offset) {
      byOffset.remove(previous);
    }
    put(key, offset);
    return true;
  }

  void restoreCursor(long offset) {
    if (offset >= firstOffset && offset <= lastOffset) {
      cursor = offset;
    }
  }

  /** The allocations in the order they were made (oldest first). */
  Map<AllocationKey, Long> allocations() {
    return new LinkedHashMap<>(byKey);
  }

  private void put(AllocationKey key, long offset) {
    byKey.put(key, offset);
    byOffset.put(offset, key);
  }
}

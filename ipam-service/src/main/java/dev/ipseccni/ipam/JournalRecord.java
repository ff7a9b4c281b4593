package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;

/**
 * One line of the allocation journal.
 *
 * @param op {@code block} (the journal's block from here on), {@code alloc}, {@code release},
 *     {@code cursor} (where round-robin continues, written by compaction), or {@code orphan} (an
 *     allocation of a block the node no longer holds, kept until its pod is deleted; written by
 *     compaction, ended by a {@code release} of that block)
 * @param block the node block the record belongs to
 * @param offset the address's offset in the block (alloc, release, cursor)
 */
record JournalRecord(String op, String block, String network, String containerId, String ifName, long offset) {
  static final String BLOCK = "block";
  static final String ALLOC = "alloc";
  static final String RELEASE = "release";
  static final String CURSOR = "cursor";
  static final String ORPHAN = "orphan";

  static JournalRecord block(IpPrefix block) {
    return new JournalRecord(BLOCK, block.toString(), "", "", "", 0);
  }

  static JournalRecord alloc(IpPrefix block, AllocationKey key, long offset) {
    return new JournalRecord(ALLOC, block.toString(), key.network(), key.containerId(), key.ifName(), offset);
  }

  static JournalRecord release(IpPrefix block, AllocationKey key, long offset) {
    return new JournalRecord(RELEASE, block.toString(), key.network(), key.containerId(), key.ifName(), offset);
  }

  static JournalRecord orphan(IpPrefix block, AllocationKey key, long offset) {
    return new JournalRecord(ORPHAN, block.toString(), key.network(), key.containerId(), key.ifName(), offset);
  }

  static JournalRecord cursor(IpPrefix block, long offset) {
    return new JournalRecord(CURSOR, block.toString(), "", "", "", offset);
  }

  AllocationKey key() {
    return new AllocationKey(network, containerId, ifName);
  }
}

package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.GcRequest;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The pod allocations of this node: the in-memory pool of its block, backed by the
 * journal. Every change is written to the journal and forced to disk before the method
 * returns, so a caller may acknowledge what it got. Thread-safe; blocking (disk I/O):
 * call it from a worker thread, never the event loop.
 */
public final class NodeAllocations implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(NodeAllocations.class.getName());

  private final String node;
  private final NodeBlocks blocks;
  private final AllocationJournal journal;
  private final int compactAfterRecords;
  private PodAddressPool pool;
  /**
   * Allocations of a block this node no longer holds (it lost the block after missing its
   * renewals for longer than the grace): their pods still use the addresses, which are not
   * ours to give or to route any more. Kept, journalled, until the pod is deleted, so CHECK
   * can say why such a pod is broken.
   */
  private final Map<AllocationKey, Orphan> orphans = new LinkedHashMap<>();
  /** orphans.size(), readable without the monitor (a metrics scrape must not wait for a disk write). */
  private volatile int orphanCount;
  private int recordsSinceCompaction;
  private final int skippedLines;

  /** Where an orphaned allocation's address was: the block it belonged to and its offset there. */
  private record Orphan(IpPrefix block, long offset) {}

  /** The allocation and whether it was made now (false: the key already held it). */
  public record Allocated(Allocation allocation, boolean isNew) {}

  /** The node has no block yet: nothing can be allocated. */
  public static final class NoBlockException extends Exception {
    NoBlockException(String message) {
      super(message);
    }
  }

  private NodeAllocations(String node, NodeBlocks blocks, AllocationJournal journal, int compactAfterRecords) {
    this.node = node;
    this.blocks = blocks;
    this.journal = journal;
    this.compactAfterRecords = compactAfterRecords;
    AllocationJournal.Replay replay = journal.replayed();
    this.skippedLines = replay.skippedLines();
    replay.records().forEach(this::apply);
    this.recordsSinceCompaction = replay.records().size();
  }

  /**
   * Opens the journal in {@code journalDir} and rebuilds the allocations from it.
   *
   * @throws IllegalStateException when the journal holds allocations in a block that is not a block
   *     of {@code blocks}: the cluster CIDR or block size was changed under running pods
   */
  public static NodeAllocations open(String node, NodeBlocks blocks, Path journalDir, int compactAfterRecords)
      throws IOException {
    AllocationJournal journal = AllocationJournal.open(journalDir);
    try {
      checkJournalMatches(journal, blocks);
      NodeAllocations allocations = new NodeAllocations(node, blocks, journal, compactAfterRecords);
      synchronized (allocations) {
        allocations.compact();
      }
      return allocations;
    } catch (IOException | RuntimeException e) {
      journal.close();
      throw e;
    }
  }

  private static void checkJournalMatches(AllocationJournal journal, NodeBlocks blocks) {
    String foreignBlock = null;
    Set<AllocationKey> live = new HashSet<>();
    for (JournalRecord r : journal.replayed().records()) {
      IpPrefix block;
      try {
        block = IpPrefix.parse(r.block());
      } catch (IllegalArgumentException e) {
        continue;
      }
      if (blocks.isBlock(block)) {
        foreignBlock = null;
        live.clear();
        continue;
      }
      foreignBlock = r.block();
      switch (r.op()) {
        case JournalRecord.ALLOC -> live.add(r.key());
        case JournalRecord.RELEASE -> live.remove(r.key());
        case JournalRecord.BLOCK -> live.clear();
        default -> { }
      }
    }
    if (foreignBlock != null && !live.isEmpty()) {
      throw new IllegalStateException("journal " + journal.file() + " holds " + live.size()
          + " pod allocations in block " + foreignBlock + ", which is not a block of " + blocks
          + ": the cluster CIDR or block size was changed while pods are running; delete those pods first"
          + " (or restore the old setting)");
    }
  }

  private void apply(JournalRecord r) {
    IpPrefix block;
    try {
      block = IpPrefix.parse(r.block());
    } catch (IllegalArgumentException e) {
      LOG.log(Level.WARNING, "journal record with bad block skipped: {0}", r);
      return;
    }
    if (r.op().equals(JournalRecord.BLOCK)) {
      if (!blocks.isBlock(block)) {
        pool = null;
      } else if (pool == null || !pool.block().equals(block)) {
        orphanAll();
        pool = new PodAddressPool(node, block, blocks);
      }
      return;
    }
    if (r.op().equals(JournalRecord.ORPHAN)) {
      orphans.put(r.key(), new Orphan(block, r.offset()));
      orphanCount = orphans.size();
      return;
    }
    if (r.op().equals(JournalRecord.RELEASE) && isOrphan(r.key(), block)) {
      orphans.remove(r.key());
      orphanCount = orphans.size();
      return;
    }
    if (pool == null || !pool.block().equals(block)) {
      LOG.log(Level.WARNING, "journal record outside the current block skipped: {0}", r);
      return;
    }
    switch (r.op()) {
      case JournalRecord.ALLOC -> {
        if (pool.restore(r.key(), r.offset())) {
          pool.restoreCursor(r.offset());
        } else {
          LOG.log(Level.WARNING, "journal allocation conflicting with an earlier one skipped: {0}", r);
        }
      }
      case JournalRecord.RELEASE -> pool.release(r.key());
      case JournalRecord.CURSOR -> pool.restoreCursor(r.offset());
      default -> LOG.log(Level.WARNING, "journal record of unknown kind skipped: {0}", r);
    }
  }

  /** Lines of the journal that were corrupt or torn and skipped at open. */
  public int skippedLines() {
    return skippedLines;
  }

  /** The block the journal's allocations belong to, if any. */
  public synchronized Optional<IpPrefix> block() {
    return pool == null ? Optional.empty() : Optional.of(pool.block());
  }

  /**
   * Makes {@code block} the node's block. The same block keeps every allocation (a restart);
   * a different one starts empty, because addresses of another block are no longer ours: the
   * old block's allocations become orphans (see {@link #orphans}) until their pods are deleted.
   *
   * @return the allocations orphaned now (empty when the block stays or had none)
   */
  public synchronized List<Allocation> bindBlock(IpPrefix block) throws IOException {
    if (!blocks.isBlock(block)) {
      throw new IllegalArgumentException(block + " is not a block of " + blocks);
    }
    if (pool != null && pool.block().equals(block)) {
      return List.of();
    }
    List<Allocation> orphaned = new ArrayList<>();
    if (pool != null) {
      pool.allocations().forEach((key, offset) -> orphaned.add(toAllocation(pool.block(), key, offset)));
    }
    orphanAll();
    pool = new PodAddressPool(node, block, blocks);
    compact();
    return orphaned;
  }

  /** The current pool's allocations become orphans. Caller holds this monitor (or is replaying). */
  private void orphanAll() {
    if (pool != null && pool.size() > 0) {
      LOG.log(Level.WARNING, "node {0}: block {1} is no longer this node''s; its {2} allocations are orphaned until"
          + " their pods are deleted", node, pool.block(), pool.size());
      PodAddressPool old = pool;
      old.allocations().forEach((key, offset) -> orphans.put(key, new Orphan(old.block(), offset)));
      orphanCount = orphans.size();
    }
  }

  /** True when the key is an orphan of {@code block} (and not an allocation of the current pool). */
  private boolean isOrphan(AllocationKey key, IpPrefix block) {
    Orphan o = orphans.get(key);
    return o != null && o.block().equals(block)
        && (pool == null || !pool.block().equals(block) || pool.offsetOf(key).isEmpty());
  }

  /** The key's orphaned allocation: an address of a block this node held before, if it has one. */
  public synchronized Optional<Allocation> orphan(AllocationKey key) {
    Orphan o = orphans.get(key);
    return o == null ? Optional.empty() : Optional.of(toAllocation(o.block(), key, o.offset()));
  }

  /** How many allocations are orphaned; never blocks. */
  public int orphanCount() {
    return orphanCount;
  }

  /** Every orphaned allocation, oldest first. */
  public synchronized List<Allocation> orphans() {
    List<Allocation> all = new ArrayList<>();
    orphans.forEach((key, o) -> all.add(toAllocation(o.block(), key, o.offset())));
    return all;
  }

  /** The key's address: the one it holds, or a new one, journalled and on disk when this returns. */
  public Allocated allocate(AllocationKey key) throws PoolExhaustedException, NoBlockException, IOException {
    try {
      return allocate(key, "");
    } catch (RequestedAddressException e) {
      throw new IllegalStateException("no address was requested", e);
    }
  }

  /**
   * Like {@link #allocate(AllocationKey)}, but when {@code requestedAddress} is not empty the key
   * gets exactly that address or none: a repeated request for the address the key holds is
   * idempotent, anything else the pool cannot give is a {@link RequestedAddressException}. The
   * allocation is journalled like any other (with the unchanged round-robin cursor after it, so
   * a replay continues where a running agent would), and so survives a restart.
   *
   * @throws IllegalArgumentException when {@code requestedAddress} is not an IP address literal
   */
  public Allocated allocate(AllocationKey key, String requestedAddress)
      throws PoolExhaustedException, NoBlockException, RequestedAddressException, IOException {
    if (!requestedAddress.isEmpty()) {
      return allocateRequested(key, requestedAddress);
    }
    long position;
    Allocated result;
    synchronized (this) {
      rewriteIfPoisoned();
      PodAddressPool p = requirePool();
      Optional<Long> existing = p.offsetOf(key);
      if (existing.isPresent()) {
        result = new Allocated(toAllocation(p.block(), key, existing.get()), false);
        position = Long.MAX_VALUE;
      } else {
        long offset = p.allocate(key);
        try {
          position = journal.append(List.of(JournalRecord.alloc(p.block(), key, offset)));
        } catch (IOException e) {
          p.release(key);
          throw e;
        }
        result = new Allocated(toAllocation(p.block(), key, offset), true);
        position = afterAppend(1, position);
      }
    }
    // An existing allocation may still be in flight to disk for a concurrent request.
    journal.awaitDurable(position == Long.MAX_VALUE ? currentPosition() : position);
    return result;
  }

  private Allocated allocateRequested(AllocationKey key, String address)
      throws NoBlockException, RequestedAddressException, IOException {
    long position;
    Allocated result;
    synchronized (this) {
      rewriteIfPoisoned();
      PodAddressPool p = requirePool();
      boolean held = p.offsetOf(key).isPresent();
      long offset = p.allocateRequested(key, address);
      if (held) {
        result = new Allocated(toAllocation(p.block(), key, offset), false);
        position = Long.MAX_VALUE;
      } else {
        try {
          position = journal.append(List.of(JournalRecord.alloc(p.block(), key, offset),
              JournalRecord.cursor(p.block(), p.cursor())));
        } catch (IOException e) {
          p.release(key);
          throw e;
        }
        result = new Allocated(toAllocation(p.block(), key, offset), true);
        position = afterAppend(2, position);
      }
    }
    journal.awaitDurable(position == Long.MAX_VALUE ? currentPosition() : position);
    return result;
  }

  /**
   * Releases the key's address, on disk when this returns; empty when it held none (DEL is
   * idempotent). An orphan's release ends the orphan and is empty too: its address is in a
   * block another node holds now, so nothing of ours is freed.
   */
  public Optional<Allocation> release(AllocationKey key) throws IOException {
    long position;
    Allocation released = null;
    synchronized (this) {
      rewriteIfPoisoned();
      Optional<Long> offset = pool == null ? Optional.empty() : pool.offsetOf(key);
      if (offset.isPresent()) {
        position = journal.append(List.of(JournalRecord.release(pool.block(), key, offset.get())));
        pool.release(key);
        released = toAllocation(pool.block(), key, offset.get());
      } else {
        Orphan o = orphans.get(key);
        if (o == null) {
          return Optional.empty();
        }
        position = journal.append(List.of(JournalRecord.release(o.block(), key, o.offset())));
        orphans.remove(key);
        orphanCount = orphans.size();
      }
      position = afterAppend(1, position);
    }
    // durable before the answer; waited for outside the monitor, so other requests go on meanwhile
    journal.awaitDurable(position);
    return Optional.ofNullable(released);
  }

  /** Releases every allocation of {@code network} whose attachment is not in {@code valid}. */
  public List<Allocation> gc(String network, List<GcRequest.Attachment> valid) throws IOException {
    Set<GcRequest.Attachment> keep = new HashSet<>(valid);
    List<Allocation> released = new ArrayList<>();
    long position;
    synchronized (this) {
      rewriteIfPoisoned();
      List<JournalRecord> records = new ArrayList<>();
      // orphans whose pods are gone end too (nothing of ours is freed: they are not in `released`)
      List<AllocationKey> endedOrphans = new ArrayList<>();
      orphans.forEach((key, o) -> {
        if (key.network().equals(network)
            && !keep.contains(new GcRequest.Attachment(key.containerId(), key.ifName()))) {
          records.add(JournalRecord.release(o.block(), key, o.offset()));
          endedOrphans.add(key);
        }
      });
      for (Map.Entry<AllocationKey, Long> e : pool == null ? Map.<AllocationKey, Long>of().entrySet()
          : pool.allocations().entrySet()) {
        AllocationKey key = e.getKey();
        if (key.network().equals(network)
            && !keep.contains(new GcRequest.Attachment(key.containerId(), key.ifName()))) {
          records.add(JournalRecord.release(pool.block(), key, e.getValue()));
          released.add(toAllocation(pool.block(), key, e.getValue()));
        }
      }
      if (records.isEmpty()) {
        return released;
      }
      gcStep.reached(GcStep.CHOSEN);
      position = journal.append(records);
      endedOrphans.forEach(orphans::remove);
      orphanCount = orphans.size();
      released.forEach(a -> pool.release(new AllocationKey(a.network(), a.containerId(), a.ifName())));
      position = afterAppend(records.size(), position);
    }
    gcStep.reached(GcStep.WRITTEN);
    journal.awaitDurable(position);
    return released;
  }

  /** A point inside {@link #gc}, where a crash test makes it stop so that its kill lands exactly there. */
  interface GcStep {
    /** The releases are chosen; nothing of them is written or applied yet. */
    String CHOSEN = "chosen";
    /** The releases are written to the journal and applied in memory; not forced, not acknowledged. */
    String WRITTEN = "written";

    void reached(String step);
  }

  private volatile GcStep gcStep = step -> { };

  /** For tests: called at each {@link GcStep} of every GC from now on. */
  void onGcStep(GcStep step) {
    this.gcStep = step;
  }

  /** The key's allocation, if it holds one. */
  public synchronized Optional<Allocation> check(AllocationKey key) {
    if (pool == null) {
      return Optional.empty();
    }
    return pool.offsetOf(key).map(offset -> toAllocation(pool.block(), key, offset));
  }

  /** Every allocation, oldest first. */
  public synchronized List<Allocation> all() {
    if (pool == null) {
      return List.of();
    }
    List<Allocation> all = new ArrayList<>();
    pool.allocations().forEach((key, offset) -> all.add(toAllocation(pool.block(), key, offset)));
    return all;
  }

  /** Pod addresses per block (network, gateway and broadcast excluded). */
  public long capacity() {
    return blocks.podCapacity();
  }

  private PodAddressPool requirePool() throws NoBlockException {
    if (pool == null) {
      throw new NoBlockException("node " + node + " holds no block yet");
    }
    return pool;
  }

  private long currentPosition() {
    return journal.position();
  }

  private long afterAppend(int records, long position) throws IOException {
    recordsSinceCompaction += records;
    long live = (pool == null ? 0 : pool.size()) + orphans.size();
    if (recordsSinceCompaction > Math.max(compactAfterRecords, 2L * live)) {
      compact();
    }
    return position;
  }

  /**
   * After a failed force nothing appended since is known to be on disk: the whole state is
   * rewritten (and forced) before anything more is acknowledged. Fails while the disk does.
   * Caller holds this monitor.
   */
  private void rewriteIfPoisoned() throws IOException {
    if (journal.needsRewrite()) {
      compact();
      LOG.log(Level.INFO, "journal rewritten whole after a failed force; {0} allocations on disk",
          pool == null ? 0 : pool.size());
    }
  }

  /** Rewrites the journal as the current state. Caller holds this monitor. */
  private void compact() throws IOException {
    List<JournalRecord> live = new ArrayList<>();
    orphans.forEach((key, o) -> live.add(JournalRecord.orphan(o.block(), key, o.offset())));
    if (pool != null) {
      live.add(JournalRecord.block(pool.block()));
      pool.allocations().forEach((key, offset) -> live.add(JournalRecord.alloc(pool.block(), key, offset)));
      live.add(JournalRecord.cursor(pool.block(), pool.cursor()));
    }
    journal.compact(live);
    recordsSinceCompaction = live.size();
  }

  static Allocation toAllocation(IpPrefix block, AllocationKey key, long offset) {
    return new Allocation(key.network(), key.containerId(), key.ifName(),
        block.addressAt(offset) + "/" + block.prefixLength(), NodeBlocks.gateway(block), block.toString());
  }

  /** For tests: how the journal forces its appends from now on. */
  void forceJournalWith(AllocationJournal.Force force) {
    journal.forceWith(force);
  }

  @Override
  public void close() throws IOException {
    journal.close();
  }
}

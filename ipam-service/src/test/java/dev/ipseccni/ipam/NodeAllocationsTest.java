package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.GcRequest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NodeAllocationsTest {
  private final NodeBlocks blocks = NodeBlocks.of("10.128.0.0/16", 24);
  private final IpPrefix block = IpPrefix.parse("10.128.1.0/24");
  @TempDir
  Path dir;

  private NodeAllocations open(int compactAfter) throws Exception {
    return NodeAllocations.open("n1", blocks, dir, compactAfter);
  }

  private static AllocationKey key(int i) {
    return new AllocationKey("net", "c" + i, "eth0");
  }

  private Path journalFile() {
    return dir.resolve(AllocationJournal.FILE_NAME);
  }

  /**
   * After a failed fsync Linux may drop the dirty pages and report the next fsync a success.
   * Simulated here (the failing force cuts the file back to what was durable): the retried
   * ADD must not be acknowledged by such a force, and is on disk when it is acknowledged.
   */
  @Test
  void afterAFailedForceTheStateIsRewrittenWholeBeforeAnythingIsAcknowledged() throws Exception {
    Path file = dir.resolve(AllocationJournal.FILE_NAME);
    Allocation second;
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      Allocation first = a.allocate(key(1)).allocation();
      long durableSize = Files.size(file);
      java.util.concurrent.atomic.AtomicBoolean failing = new java.util.concurrent.atomic.AtomicBoolean(true);
      a.forceJournalWith(channel -> {
        if (failing.get()) {
          channel.truncate(durableSize);
          throw new IOException("Input/output error (injected)");
        }
        channel.force(false);
      });
      assertThrows(IOException.class, () -> a.allocate(key(2)), "not acknowledged: the force failed");
      failing.set(false);
      second = a.allocate(key(2)).allocation();
      assertEquals(List.of(first, second), a.all());
    }
    try (NodeAllocations a = open(10_000)) {
      assertEquals(second, a.check(key(2)).orElseThrow(), "an acknowledged allocation is on disk");
    }
  }

  @Test
  void allocationsSurviveReopen() throws Exception {
    List<Allocation> before = new ArrayList<>();
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      for (int i = 0; i < 20; i++) {
        before.add(a.allocate(key(i)).allocation());
      }
      a.release(key(3));
      before.remove(3);
    }
    try (NodeAllocations a = open(10_000)) {
      assertEquals(block, a.block().orElseThrow());
      assertEquals(before, a.all());
      // Round-robin continues after the last handed-out address, not at the freed one.
      assertEquals("10.128.1.22/24", a.allocate(key(100)).allocation().address());
    }
  }

  @Test
  void requestedAllocationSurvivesReopenAndRoundRobinContinuesAsBefore() throws Exception {
    Allocation requested;
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      a.allocate(key(1));
      requested = a.allocate(key(2), "10.128.1.200").allocation();
      assertEquals("10.128.1.200/24", requested.address());
      assertEquals(false, a.allocate(key(2), "10.128.1.200").isNew(), "the same request again is idempotent");
    }
    try (NodeAllocations a = open(10_000)) {
      assertEquals(requested, a.check(key(2)).orElseThrow());
      RequestedAddressException taken = assertThrows(RequestedAddressException.class,
          () -> a.allocate(key(3), "10.128.1.200"));
      assertEquals(RequestedAddressException.Reason.IN_USE, taken.reason());
      assertEquals("10.128.1.3/24", a.allocate(key(4)).allocation().address(),
          "the requested .200 did not move round-robin, before or after the restart");
    }
    // Compaction writes the state out again: the requested address is still held after it.
    try (NodeAllocations a = open(1)) {
      a.allocate(key(5));
      a.allocate(key(6));
    }
    try (NodeAllocations a = open(10_000)) {
      assertEquals(requested, a.check(key(2)).orElseThrow());
    }
  }

  @Test
  void refusedRequestWritesNothing() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      a.allocate(key(1));
      long size = Files.size(journalFile());
      assertThrows(RequestedAddressException.class, () -> a.allocate(key(2), "10.128.1.2"));
      assertThrows(RequestedAddressException.class, () -> a.allocate(key(1), "10.128.1.9"));
      assertThrows(IllegalArgumentException.class, () -> a.allocate(key(2), "not-an-address"));
      assertEquals(size, Files.size(journalFile()));
      assertEquals(1, a.all().size());
    }
  }

  @Test
  void allocationCarriesGatewayAndBlock() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      Allocation allocation = a.allocate(key(1)).allocation();
      assertEquals(new Allocation("net", "c1", "eth0", "10.128.1.2/24", "10.128.1.1", "10.128.1.0/24"), allocation);
      assertEquals(false, a.allocate(key(1)).isNew());
    }
  }

  @Test
  void corruptLineIsSkippedNotFatal() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      a.allocate(key(1));
      a.allocate(key(2));
    }
    List<String> lines = new ArrayList<>(Files.readAllLines(journalFile()));
    int target = lines.size() - 2; // the second-to-last line: key(1)'s allocation or a later one
    lines.set(target, lines.get(target).replace("c", "X"));
    lines.add(3, "garbage that is not a journal line");
    Files.write(journalFile(), lines);
    try (NodeAllocations a = open(10_000)) {
      assertEquals(2, a.skippedLines());
      assertTrue(a.check(key(2)).isPresent(), "the intact line after the corrupt ones is kept");
    }
  }

  @Test
  void tornLastLineIsCutAndLaterAppendsStayReadable() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      a.allocate(key(1));
    }
    String partial = AllocationJournal.encode(JournalRecord.alloc(block, key(2), 3));
    Files.writeString(journalFile(), partial.substring(0, partial.length() / 2), StandardOpenOption.APPEND);
    try (NodeAllocations a = open(10_000)) {
      assertEquals(1, a.skippedLines());
      assertTrue(a.check(key(2)).isEmpty());
      a.allocate(key(3));
    }
    try (NodeAllocations a = open(10_000)) {
      assertEquals(0, a.skippedLines());
      assertTrue(a.check(key(1)).isPresent());
      assertTrue(a.check(key(3)).isPresent());
    }
  }

  @Test
  void compactionKeepsStateAndBoundsTheFile() throws Exception {
    try (NodeAllocations a = open(20)) {
      a.bindBlock(block);
      for (int round = 0; round < 50; round++) {
        a.allocate(key(round));
        if (round % 2 == 0) {
          a.release(key(round));
        }
      }
      long lines = Files.readAllLines(journalFile()).size();
      assertTrue(lines <= 2 * 25 + 2 + 1, "journal of " + lines + " lines was not compacted");
    }
    try (NodeAllocations a = open(20)) {
      assertEquals(25, a.all().size());
      for (int round = 1; round < 50; round += 2) {
        assertTrue(a.check(key(round)).isPresent());
      }
      // The cursor survived compaction: the next address follows the 50th handed out.
      assertEquals("10.128.1.52/24", a.allocate(key(1000)).allocation().address());
    }
  }

  @Test
  void leftoverCompactionFileIsIgnored() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      a.allocate(key(1));
    }
    Files.writeString(dir.resolve(AllocationJournal.FILE_NAME + ".tmp"), "half a snapshot",
        StandardCharsets.UTF_8);
    try (NodeAllocations a = open(10_000)) {
      assertTrue(a.check(key(1)).isPresent());
    }
    assertTrue(Files.notExists(dir.resolve(AllocationJournal.FILE_NAME + ".tmp")));
  }

  @Test
  void gcReleasesEverythingNotValidInThatNetwork() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      a.allocate(key(1));
      a.allocate(key(2));
      a.allocate(new AllocationKey("other", "c3", "eth0"));
      List<Allocation> released = a.gc("net", List.of(new GcRequest.Attachment("c2", "eth0")));
      assertEquals(List.of("c1"), released.stream().map(Allocation::containerId).toList());
      assertTrue(a.check(key(2)).isPresent());
      assertTrue(a.check(new AllocationKey("other", "c3", "eth0")).isPresent());
    }
  }

  /**
   * A kill -9 in the middle of GC's journal write, at every line boundary of it and inside
   * each line: the journal is cut there, as a killed writer leaves it. Whatever the cut,
   * the reopened node holds every valid attachment at its address and nothing new, and the
   * retried GC leaves exactly the valid ones, whose addresses are never handed out again.
   */
  @Test
  void gcCutShortAnywhereInItsWriteLosesNothingAndFreesNothingTwice() throws Exception {
    java.util.Map<String, String> before = new java.util.HashMap<>();
    List<GcRequest.Attachment> valid = new ArrayList<>();
    byte[] pre;
    byte[] post;
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      for (int i = 0; i < 30; i++) {
        before.put("c" + i, a.allocate(key(i)).allocation().address());
        if (i < 10) {
          valid.add(new GcRequest.Attachment("c" + i, "eth0"));
        }
      }
    }
    try (NodeAllocations a = open(10_000)) {
      pre = Files.readAllBytes(journalFile());
      assertEquals(20, a.gc("net", valid).size());
      post = Files.readAllBytes(journalFile());
    }
    assertTrue(post.length > pre.length && java.util.Arrays.equals(pre, 0, pre.length, post, 0, pre.length),
        "GC appended to the journal");
    Set<Integer> cuts = new java.util.TreeSet<>();
    for (int i = pre.length; i <= post.length; i++) {
      if (i == post.length || post[i - 1] == '\n') {
        cuts.addAll(List.of(i, i + 1, i + 40));
      }
    }
    cuts.removeIf(c -> c > post.length);
    for (int cut : cuts) {
      Files.write(journalFile(), java.util.Arrays.copyOf(post, cut));
      try (NodeAllocations a = open(10_000)) {
        java.util.Map<String, String> held = new java.util.HashMap<>();
        a.all().forEach(x -> held.put(x.containerId(), x.address()));
        assertEquals(held.size(), new HashSet<>(held.values()).size(), "cut at " + cut + ": an address held twice");
        held.forEach((cid, address) -> assertEquals(before.get(cid), address, "cut at " + cut + ": " + cid));
        for (GcRequest.Attachment v : valid) {
          assertEquals(before.get(v.containerId()), held.get(v.containerId()), "cut at " + cut + ": lost " + v);
        }
        a.gc("net", valid);
        assertEquals(10, a.all().size(), "cut at " + cut + ": after the retried GC");
        Set<String> addresses = new HashSet<>();
        a.all().forEach(x -> addresses.add(x.address()));
        for (int i = 100; i < 120; i++) {
          String fresh = a.allocate(key(i)).allocation().address();
          assertTrue(addresses.add(fresh), "cut at " + cut + ": " + fresh + " handed out twice");
        }
      }
    }
  }

  @Test
  void releaseIsIdempotent() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      a.allocate(key(1));
      assertTrue(a.release(key(1)).isPresent());
      assertTrue(a.release(key(1)).isEmpty());
      assertTrue(a.release(key(77)).isEmpty());
    }
  }

  @Test
  void allocateWithoutBlockFails() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      assertThrows(NodeAllocations.NoBlockException.class, () -> a.allocate(key(1)));
    }
  }

  @Test
  void anotherBlockStartsEmpty() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      a.allocate(key(1));
      a.bindBlock(IpPrefix.parse("10.128.2.0/24"));
      assertTrue(a.all().isEmpty());
    }
    try (NodeAllocations a = open(10_000)) {
      assertEquals("10.128.2.0/24", a.block().orElseThrow().toString());
      assertTrue(a.all().isEmpty());
    }
  }

  @Test
  void journalFromAnotherClusterCidrIsRefused() throws Exception {
    try (NodeAllocations a = open(10_000)) {
      a.bindBlock(block);
      a.allocate(key(1));
    }
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> NodeAllocations.open("n1", NodeBlocks.of("10.200.0.0/16", 24), dir, 10_000));
    assertTrue(e.getMessage().contains("10.128.1.0/24") && e.getMessage().contains("10.200.0.0/16"), e.getMessage());
  }

  @Test
  void concurrentAddsForDifferentContainersGetDistinctAddresses() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try (NodeAllocations a = open(50)) {
      a.bindBlock(block);
      List<Future<Allocation>> futures = new ArrayList<>();
      for (int i = 0; i < 253; i++) {
        int n = i;
        futures.add(pool.submit(() -> a.allocate(key(n)).allocation()));
      }
      Set<String> addresses = new HashSet<>();
      for (Future<Allocation> f : futures) {
        assertTrue(addresses.add(f.get().address()), "duplicate " + f.get().address());
      }
      assertEquals(253, addresses.size());
    } finally {
      pool.shutdownNow();
    }
    try (NodeAllocations a = open(50)) {
      assertEquals(253, a.all().size());
    }
  }

  /**
   * A node that lost its block keeps the old block's allocations as orphans: not ours to give
   * or to route, but known (across restarts and compactions) until each pod is deleted, so
   * CHECK can say why the pod is broken. A DEL or a GC that leaves the pod out ends one.
   */
  @Test
  void allocationsOfALostBlockAreOrphansUntilTheirPodsAreDeleted() throws Exception {
    IpPrefix next = IpPrefix.parse("10.128.2.0/24");
    List<Allocation> old = new ArrayList<>();
    try (NodeAllocations a = open(4)) {
      a.bindBlock(block);
      for (int i = 0; i < 3; i++) {
        old.add(a.allocate(key(i)).allocation());
      }
      assertEquals(old, a.bindBlock(next), "what the block change orphaned");
      assertEquals(List.of(), a.bindBlock(next), "binding the same block again orphans nothing");
      assertEquals(List.of(), a.all());
      assertEquals(old, a.orphans());
      assertEquals(3, a.orphanCount());
      assertEquals(Optional.empty(), a.check(key(0)), "an orphan is not an allocation of ours");
      assertEquals(old.get(0), a.orphan(key(0)).orElseThrow());
      // the new block hands out its own addresses; the old ones are not given again
      assertEquals("10.128.2.2/24", a.allocate(key(9)).allocation().address());
    }
    try (NodeAllocations a = open(4)) {
      assertEquals(old, a.orphans(), "orphans survive a restart (and the compaction at open)");
      assertEquals(Optional.empty(), a.release(key(0)), "releasing an orphan frees nothing of ours");
      assertEquals(Optional.empty(), a.orphan(key(0)));
      assertEquals(List.of(), a.gc("net", List.of(new GcRequest.Attachment("c2", "eth0"),
          new GcRequest.Attachment("c9", "eth0"))), "GC frees nothing of ours for an orphan");
      assertEquals(List.of(old.get(2)), a.orphans(), "GC ended the orphan whose pod is gone");
      assertEquals(1, a.orphanCount());
      assertEquals("10.128.2.2/24", a.check(key(9)).orElseThrow().address());
    }
    try (NodeAllocations a = open(4)) {
      assertEquals(List.of(old.get(2)), a.orphans(), "the DEL and the GC are on disk");
      assertEquals(Optional.empty(), a.release(key(2)));
      assertEquals(0, a.orphanCount());
    }
    try (NodeAllocations a = open(4)) {
      assertEquals(List.of(), a.orphans());
      assertEquals(1, a.all().size());
    }
  }
}

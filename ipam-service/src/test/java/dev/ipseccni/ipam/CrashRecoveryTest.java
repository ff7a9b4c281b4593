package dev.ipseccni.ipam;

import dev.ipseccni.bus.TestPorts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * kill -9 of the agent JVM in the middle of a stream of allocations and releases (with
 * frequent journal compaction), three times over: every acknowledged allocation survives,
 * nothing is handed out twice, and the node gets its own block back.
 */
class CrashRecoveryTest {
  private ChildNode child;

  @AfterEach
  void stop() throws Exception {
    if (child != null) {
      child.close();
    }
  }

  @Test
  void killNineLosesNoAcknowledgedAllocation() throws Exception {
    ChildNode.killLeftovers();
    Path journals = Files.createTempDirectory("ipt-ipam-crash");
    String cluster = "ipt-" + UUID.randomUUID();
    int port = TestPorts.free();
    Map<String, String> acked = new HashMap<>();   // cid -> address, acknowledged and not released
    Set<String> uncertain = new HashSet<>();       // release sent, reply not seen
    String block = null;
    for (int run = 1; run <= 4; run++) {
      child = ChildNode.start("crash" + run, List.of(), Path.of("target", "ipt-logs"),
          "node=ipt-crash", "bind=127.0.0.1", "port=" + port, "members=127.0.0.1:" + port, "expected=1",
          "journal=" + journals, "cluster=" + cluster, "compactAfter=40");
      String ready = child.await("READY ipt-crash ", Duration.ofSeconds(120));
      String thisBlock = ready.split(" ")[2];
      if (block != null) {
        assertEquals(block, thisBlock, "a restarted node gets its own block back");
      }
      block = thisBlock;

      // What the restarted node holds must be exactly what was acknowledged.
      Map<String, String> have = new HashMap<>();
      for (String line : child.askAll("view ipt-crash", "DONE view ipt-crash")) {
        if (line.startsWith("HAVE ")) {
          String[] w = line.split(" ");
          have.put(w[1], w[2]);
        }
      }
      assertEquals(have.size(), new HashSet<>(have.values()).size(), "an address held twice: " + have);
      for (Map.Entry<String, String> e : acked.entrySet()) {
        assertEquals(e.getValue(), have.get(e.getKey()), "acknowledged allocation of " + e.getKey() + " lost");
      }
      for (String cid : have.keySet()) {
        assertTrue(acked.containsKey(cid) || uncertain.contains(cid) || cid.startsWith("r" + (run - 1) + "-"),
            "unexpected allocation " + cid);
      }
      // What the node holds now (acknowledged or not) is the baseline for the next run.
      acked.clear();
      acked.putAll(have);
      uncertain.clear();
      if (run == 4) {
        break;
      }

      int from = child.lines().size();
      child.send("stream ipt-crash r" + run + "- 8");
      // Kill at some point well into the stream: after a run-dependent number of acknowledgements.
      int killAfter = 150 + 97 * run;
      Poll.until("allocations streaming", Duration.ofSeconds(120),
          () -> child.lines().stream().skip(from).filter(l -> l.startsWith("ACK ")).count() >= killAfter);
      child.kill9();
      for (String line : child.lines().subList(from, child.lines().size())) {
        String[] w = line.split(" ");
        switch (w[0]) {
          case "ACK" -> {
            assertFalse(acked.containsValue(w[3]) && !uncertain.contains(keyOf(acked, w[3])),
                "address " + w[3] + " handed out while still held");
            acked.put(w[2], w[3]);
          }
          case "RELSENT" -> uncertain.add(w[1]);
          case "REL" -> {
            uncertain.remove(w[1]);
            acked.remove(w[1]);
          }
          case "ERR" -> throw new AssertionError(line);
          default -> { }
        }
      }
      uncertain.forEach(acked::remove);
    }
  }

  private static String keyOf(Map<String, String> map, String value) {
    return map.entrySet().stream().filter(e -> e.getValue().equals(value)).map(Map.Entry::getKey).findFirst()
        .orElse("");
  }
}

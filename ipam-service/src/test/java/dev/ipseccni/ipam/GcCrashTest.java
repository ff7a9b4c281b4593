package dev.ipseccni.ipam;

import dev.ipseccni.bus.TestPorts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * kill -9 of the node's JVM inside IPAM's GC, at each of its steps. The GC is made to stop
 * at the step ({@link NodeAllocations.GcStep}) and the node announces it; only then is it
 * killed, so the kill lands there every time, not before or after the GC by chance. After
 * the restart and the GC retried (as the runtime retries it): nothing lost (every valid
 * attachment keeps its address), nothing twice (no address held twice, the freed ones go
 * out again once each), and the cluster's address mirror holds exactly what the node holds.
 */
class GcCrashTest {
  private static final String NODE = "ipt-gc";
  private static final int KEPT = 20;
  private static final int LOST = 40;
  private ChildNode child;

  @AfterEach
  void stop() throws Exception {
    if (child != null) {
      child.close();
    }
  }

  @Test
  void killedBeforeTheReleasesAreWrittenTheRetriedGcFreesThemAll() throws Exception {
    killedInsideGc(NodeAllocations.GcStep.CHOSEN, KEPT + LOST, LOST);
  }

  @Test
  void killedAfterTheReleasesAreWrittenButNotAcknowledgedNothingIsFreedTwice() throws Exception {
    // written, not forced: a killed process leaves its writes in the page cache, so they count
    killedInsideGc(NodeAllocations.GcStep.WRITTEN, KEPT, 0);
  }

  private ChildNode start(String name, Path journals, String cluster, int port) throws Exception {
    return ChildNode.start(name, List.of(), Path.of("target", "ipt-logs"),
        "node=" + NODE, "bind=127.0.0.1", "port=" + port, "members=127.0.0.1:" + port, "expected=1",
        "journal=" + journals, "cluster=" + cluster);
  }

  private void killedInsideGc(String step, int heldAfterRestart, int freedByRetry) throws Exception {
    ChildNode.killLeftovers();
    Path journals = Files.createTempDirectory("ipt-ipam-gc-crash");
    String cluster = "ipt-" + UUID.randomUUID();
    int port = TestPorts.free();
    child = start("gc-" + step + "-1", journals, cluster, port);
    String block = child.await("READY " + NODE + " ", Duration.ofSeconds(120)).split(" ")[2];
    Map<String, String> kept = allocate("keep-", KEPT);
    Map<String, String> lost = allocate("lost-", LOST);
    Map<String, String> before = new HashMap<>(kept);
    before.putAll(lost);
    assertEquals(before, held());

    child.ask("gc-stopping-at " + NODE + " " + step + " keep-", "GC-STOPPED-AT " + step);
    child.kill9();

    child = start("gc-" + step + "-2", journals, cluster, port);
    assertEquals(block, child.await("READY " + NODE + " ", Duration.ofSeconds(120)).split(" ")[2],
        "the restarted node gets its own block back");
    Map<String, String> afterRestart = held();
    assertEquals(heldAfterRestart, afterRestart.size(), "held after the restart: " + afterRestart);
    afterRestart.forEach((cid, address) -> assertEquals(before.get(cid), address, cid + " moved or appeared"));
    kept.forEach((cid, address) -> assertEquals(address, afterRestart.get(cid), "valid attachment " + cid + " lost"));

    assertEquals("GC-DONE " + freedByRetry, child.ask("gc " + NODE + " keep-", "GC-"), "the retried GC");
    assertEquals(new TreeMap<>(kept), new TreeMap<>(held()), "after GC: exactly the valid attachments");
    Set<String> keptAddresses = bare(kept.values());
    Poll.until("the address mirror holds exactly the valid attachments", Duration.ofSeconds(60),
        () -> mirror().equals(keptAddresses), () -> "mirror " + mirror() + ", held " + keptAddresses);

    Map<String, String> again = allocate("new-", LOST);
    Set<String> addresses = new HashSet<>(kept.values());
    again.values().forEach(a -> assertTrue(addresses.add(a), "address " + a + " handed out twice"));
    assertEquals(KEPT + LOST, held().size());
  }

  private Map<String, String> allocate(String prefix, int n) {
    int from = child.lines().size();
    child.ask("alloc " + NODE + " " + prefix + " " + n + " 4", "DONE alloc " + NODE + " " + prefix);
    Map<String, String> acked = new HashMap<>();
    for (String line : child.lines().subList(from, child.lines().size())) {
      String[] w = line.split(" ");
      if (w[0].equals("ERR") || w[0].equals("FAILED")) {
        throw new AssertionError(line);
      }
      if (w[0].equals("ACK") && w[2].startsWith(prefix)) {
        acked.put(w[2], w[3]);
      }
    }
    assertEquals(n, acked.size(), "acknowledged: " + acked);
    assertEquals(n, new HashSet<>(acked.values()).size(), "an address handed out twice: " + acked);
    return acked;
  }

  private Map<String, String> held() {
    Map<String, String> have = new HashMap<>();
    for (String line : child.askAll("view " + NODE, "DONE view " + NODE)) {
      if (line.startsWith("HAVE ")) {
        String[] w = line.split(" ");
        assertTrue(have.put(w[1], w[2]) == null, "held twice: " + w[1]);
      }
    }
    assertEquals(have.size(), new HashSet<>(have.values()).size(), "an address held twice: " + have);
    return have;
  }

  private Set<String> mirror() {
    Set<String> mirrored = new HashSet<>();
    for (String line : child.askAll("mirror", "DONE mirror")) {
      if (line.startsWith("MIRROR ")) {
        mirrored.add(line.substring("MIRROR ".length()));
      }
    }
    return mirrored;
  }

  private static Set<String> bare(java.util.Collection<String> cidrs) {
    Set<String> out = new HashSet<>();
    cidrs.forEach(c -> out.add(c.substring(0, c.indexOf('/'))));
    return out;
  }
}

package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * node3 cut off from the underlay for longer than the lease grace; meanwhile node4 joins
 * and takes node3's block; node1's agent is frozen (SIGSTOP) across all of it, so it sees
 * neither the expiry nor the take-over. node1's charon is watched throughout: at no moment
 * does it hold two connections whose remote_ts is that block. After node1 resumes it holds exactly one, to the block's new holder; after node3
 * heals it claims another block, the cluster has four members, and no address is held twice
 * anywhere.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PartitionPastGraceTest {
  static final int GRACE_SECONDS = 10;
  static final String SHORT_LEASES = "{\"ipam\":{\"leaseRenewSeconds\":1,\"leaseGraceSeconds\":" + GRACE_SECONDS
      + "},\"cluster\":{\"expectedMembers\":3}}";
  static final String TAKEN = "10.128.3.0/24";
  static final Duration DEADLINE = Duration.ofMinutes(3);

  private LabHarness lab;
  private CniLab cni;

  @BeforeAll
  void threeNodes() {
    lab = new LabHarness();
    cni = new CniLab(lab);
    cni.up(3, SHORT_LEASES);
    MeshTest.awaitFullMesh(lab, 3);
  }

  @AfterAll
  void tearDown() throws Exception {
    if (lab != null) {
      // the agents' logs outlive the lab, for a failed run
      java.nio.file.Path keep = java.nio.file.Path.of("target", "partition-past-grace");
      java.nio.file.Files.createDirectories(keep);
      for (int node = 1; node <= 4; node++) {
        java.nio.file.Path log = lab.nodeDir(node).resolve("agent.log");
        if (java.nio.file.Files.exists(log)) {
          java.nio.file.Files.copy(log, keep.resolve("node" + node + "-agent.log"),
              java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
      }
      lab.close();
    }
  }

  private void underlay(int node, String op) {
    lab.exec(String.valueOf(node), "iptables", "-w", "-t", "raw", op, "PREROUTING", "-i", "eth0", "-j", "DROP")
        .orFail("raw PREROUTING " + op);
    lab.exec(String.valueOf(node), "iptables", "-w", "-t", "raw", op, "OUTPUT", "-o", "eth0", "-j", "DROP")
        .orFail("raw OUTPUT " + op);
  }

  private static void signal(String signal, long pid) throws Exception {
    assertEquals(0, new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start().waitFor());
  }

  private String ownBlock(int node) {
    return lab.state(node).map(s -> s.path("lease").path("block").asText("")).orElse("");
  }

  @Test
  void blockTakenOverWhileANodeIsPausedIsNeverReachedThroughTwoConnections() throws Exception {
    assertEquals(TAKEN, ownBlock(3));
    lab.lab("pod", "add", "3", "cutoff");
    String cutoffPod = TunnelLab.podAddress(lab, "cutoff");
    assertTrue(cutoffPod.startsWith("10.128.3."), cutoffPod);
    // node1's charon, watched from now to the end
    List<String> twice = new CopyOnWriteArrayList<>();
    AtomicBoolean watching = new AtomicBoolean(true);
    Thread watcher = new Thread(() -> {
      while (watching.get()) {
        // by remote_ts, not by name: after the heal peer-node3 is a connection to node3's new block
        String conns = lab.exec("1", "swanctl", "--list-conns").stdout();
        if (conns.split("remote: " + java.util.regex.Pattern.quote(TAKEN) + "\n", -1).length > 2) {
          twice.add(conns);
        }
        try {
          Thread.sleep(200); // polling interval of the watch, not synchronisation
        } catch (InterruptedException e) {
          return;
        }
      }
    }, "node1-conns");
    watcher.setDaemon(true);
    watcher.start();

    long node1 = lab.pid("agent", 1).orElseThrow();
    signal("STOP", node1);
    boolean frozen = true;
    boolean cut = false;
    try {
      underlay(3, "-I");
      cut = true;
      long cutAt = System.nanoTime();
      // node4 may take the block only once node3's lease is past its grace; before, it would take a free one
      LabHarness.await(DEADLINE, "node3's lease past its grace",
          () -> System.nanoTime() - cutAt > Duration.ofSeconds(GRACE_SECONDS + 3).toNanos());
      lab.lab(Map.of("LAB_AGENT_CONFIG_EXTRA", SHORT_LEASES.substring(0, SHORT_LEASES.length() - 1)
          + ",\"network\":{\"preferredBlock\":\"" + TAKEN + "\"}}"), "add-node");
      LabHarness.await(DEADLINE, "node4 holds node3's block", () -> ownBlock(4).equals(TAKEN));

      signal("CONT", node1);
      frozen = false;
      try {
        LabHarness.await(DEADLINE, "node1 loads node4 and drops node3", () -> {
          List<String> conns = TunnelLab.conns(lab, 1);
          return conns.contains("peer-node4") && !conns.contains("peer-node3");
        });
      } catch (AssertionError e) {
        throw new AssertionError(e.getMessage() + "; node1 has " + TunnelLab.conns(lab, 1) + ", members "
            + lab.state(1).map(LabHarness::members).orElse(List.of()), e);
      }
      LabHarness.await(DEADLINE, "node1 -> node4 tunnel established", () -> TunnelLab.tunnelUp(lab, 1, 4));
      lab.lab("pod", "add", "4", "taker");
      String takerPod = TunnelLab.podAddress(lab, "taker");
      assertTrue(takerPod.startsWith("10.128.3."), "node4's pod has an address of the block it took: " + takerPod);
      LabHarness.await(DEADLINE, "node1 reaches node4's pod " + takerPod,
          () -> TunnelLab.pingOnce(lab, "1", takerPod));

      underlay(3, "-D");
      cut = false;
      for (int node = 1; node <= 4; node++) {
        int n = node;
        lab.awaitState(n, DEADLINE, "4 members on node" + n, s -> LabHarness.members(s).size() == 4);
      }
      // right after the merge node3's view still shows its old lease until its IPAM reads the map
      // again (within a renewal): wait for the block it claims instead, not for any block
      LabHarness.await(DEADLINE, "node3 holds another block, not the one node4 took", () -> {
        String block = ownBlock(3);
        return !block.isEmpty() && !block.equals(TAKEN);
      });
      assertEquals(TAKEN, ownBlock(4));
    } finally {
      if (frozen) {
        signal("CONT", node1);
      }
      if (cut) {
        underlay(3, "-D");
      }
      watching.set(false);
      watcher.join(30_000);
    }
    assertEquals(List.of(), twice, "node1 held two connections whose remote_ts is " + TAKEN);

    Map<String, String> owners = new HashMap<>();
    List<String> twiceHeld = new ArrayList<>();
    for (int node = 1; node <= 4; node++) {
      for (String address : cni.allocations(node).values()) {
        String before = owners.put(address, "node" + node);
        if (before != null) {
          twiceHeld.add(address + " on " + before + " and node" + node);
        }
      }
    }
    assertEquals(List.of(), twiceHeld, "addresses held twice in the cluster");
  }
}

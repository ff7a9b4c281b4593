package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import dev.ipseccni.bus.TestPorts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Three Hazelcast members in three JVMs; each runs four IPAM nodes that claim blocks at
 * the same moment and then allocate thousands of addresses concurrently.
 */
class ClusterAllocationTest {
  private static final int PER_NODE = 800;
  private final List<ChildNode> children = new ArrayList<>();

  @AfterEach
  void stopChildren() throws Exception {
    for (ChildNode c : children) {
      c.close();
    }
  }

  @Test
  void threeMembersAllocateConcurrentlyWithoutDuplicatesAndWithDistinctBlocks() throws Exception {
    ChildNode.killLeftovers();
    Path journals = Files.createTempDirectory("ipt-ipam-cluster");
    String cluster = "ipt-" + UUID.randomUUID();
    int port = TestPorts.free();
    String members = "127.0.77.1:" + port + ",127.0.77.2:" + port + ",127.0.77.3:" + port;
    for (int m = 1; m <= 3; m++) {
      children.add(ChildNode.start("m" + m, List.of(), Path.of("target", "ipt-logs"),
          "node=ipt-m" + m, "bind=127.0.77." + m, "port=" + port, "members=" + members, "expected=3",
          "journal=" + journals, "blockLength=20", "cluster=" + cluster));
    }
    for (ChildNode c : children) {
      c.await("STARTED", Duration.ofSeconds(120));
    }
    // Four more nodes per member claim at once: 15 claims race for 16 blocks.
    List<String> nodes = new ArrayList<>();
    for (int m = 1; m <= 3; m++) {
      nodes.add("ipt-m" + m);
      for (char x = 'a'; x <= 'd'; x++) {
        children.get(m - 1).send("deploy ipt-m" + m + x + " -");
        nodes.add("ipt-m" + m + x);
      }
    }
    Map<String, String> blockOf = new HashMap<>();
    for (int m = 1; m <= 3; m++) {
      ChildNode c = children.get(m - 1);
      for (String node : nodes) {
        if (node.startsWith("ipt-m" + m)) {
          String ready = c.await("READY " + node + " ", Duration.ofSeconds(120));
          blockOf.put(node, ready.split(" ")[2]);
        }
      }
    }
    assertEquals(nodes.size(), new HashSet<>(blockOf.values()).size(), "every block distinct: " + blockOf);

    for (int m = 1; m <= 3; m++) {
      for (String node : nodes) {
        if (node.startsWith("ipt-m" + m)) {
          children.get(m - 1).send("alloc " + node + " c- " + PER_NODE + " 16");
        }
      }
    }
    Map<String, String> holderOf = new HashMap<>();
    int acks = 0;
    for (int m = 1; m <= 3; m++) {
      ChildNode c = children.get(m - 1);
      for (String node : nodes) {
        if (!node.startsWith("ipt-m" + m)) {
          continue;
        }
        c.await(l -> l.equals("DONE alloc " + node + " c-"), 0, Duration.ofSeconds(300));
        IpPrefix block = IpPrefix.parse(blockOf.get(node));
        for (String line : c.lines()) {
          String[] w = line.split(" ");
          if (!line.startsWith("ACK " + node + " ")) {
            assertTrue(!line.startsWith("ERR " + node + " "), line);
            continue;
          }
          acks++;
          String address = w[3].split("/")[0];
          block.offsetOf(address); // throws when outside the node's own block
          String previous = holderOf.put(address, node + "/" + w[2]);
          assertEquals(null, previous, "duplicate address " + address);
        }
      }
    }
    assertEquals(nodes.size() * PER_NODE, acks);
    assertEquals(acks, holderOf.size());

    // The cluster's lease map agrees with what every node believes it holds.
    Map<String, String> leaseMap = new HashMap<>();
    for (String line : children.get(0).askAll("leases", "DONE leases")) {
      String[] w = line.split(" ");
      assertEquals(null, leaseMap.put(w[2], w[1]), "node " + w[2] + " holds two blocks");
    }
    assertEquals(blockOf, leaseMap);

    // The mirror (off the ADD path) catches up with every allocation.
    Poll.until("mirror complete", Duration.ofSeconds(60), () -> {
      List<String> mirror = children.get(1).askAll("mirror", "DONE mirror");
      return mirror.size() == holderOf.size();
    });
    Set<String> mirrored = new HashSet<>();
    children.get(2).askAll("mirror", "DONE mirror").forEach(l -> mirrored.add(l.split(" ")[1]));
    assertEquals(holderOf.keySet(), mirrored);
  }
}

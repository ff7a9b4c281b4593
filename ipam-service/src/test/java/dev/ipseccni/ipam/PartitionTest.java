package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Three members, each in its own network namespace (ipt-n1..3) on a bridge in a fourth
 * (ipt-ul). The link of ipt-n3 is cut: the minority claims nothing, the majority goes on;
 * after the link is back and the halves merged, no block is held twice.
 */
class PartitionTest {
  private static final List<String> NAMESPACES = List.of("ipt-n1", "ipt-n2", "ipt-n3", "ipt-ul");
  private final List<ChildNode> children = new ArrayList<>();

  /**
   * Four member namespaces {@code <prefix>n1..n4} with addresses {@code <subnet>1..4/24} on a
   * bridge in {@code <prefix>ul}, the underlay of the lease tests with real members.
   */
  static void fourMembersOnABridge(String prefix, String subnet) throws IOException, InterruptedException {
    run("ip", "netns", "add", prefix + "ul");
    run("ip", "-n", prefix + "ul", "link", "add", prefix + "br", "type", "bridge");
    run("ip", "-n", prefix + "ul", "link", "set", prefix + "br", "up");
    for (int i = 1; i <= 4; i++) {
      String ns = prefix + "n" + i;
      run("ip", "netns", "add", ns);
      run("ip", "link", "add", prefix + "v" + i, "netns", ns, "type", "veth", "peer", "name", prefix + "b" + i,
          "netns", prefix + "ul");
      run("ip", "-n", ns, "addr", "add", subnet + i + "/24", "dev", prefix + "v" + i);
      run("ip", "-n", ns, "link", "set", prefix + "v" + i, "up");
      run("ip", "-n", ns, "link", "set", "lo", "up");
      run("ip", "-n", prefix + "ul", "link", "set", prefix + "b" + i, "master", prefix + "br", "up");
    }
  }

  static void run(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IOException(String.join(" ", cmd) + " failed: " + out);
    }
  }

  static void removeNamespaces() throws Exception {
    for (String ns : NAMESPACES) {
      if (Files.exists(Path.of("/run/netns", ns))) {
        run("ip", "netns", "del", ns);
      }
    }
  }

  @BeforeEach
  void underlay() throws Exception {
    assertTrue("root".equals(System.getProperty("user.name")), "needs root for network namespaces");
    ChildNode.killLeftovers();
    removeNamespaces();
    run("ip", "netns", "add", "ipt-ul");
    run("ip", "-n", "ipt-ul", "link", "add", "ipt-br", "type", "bridge");
    run("ip", "-n", "ipt-ul", "link", "set", "ipt-br", "up");
    for (int i = 1; i <= 3; i++) {
      run("ip", "netns", "add", "ipt-n" + i);
      run("ip", "link", "add", "ipt-v" + i, "netns", "ipt-n" + i, "type", "veth", "peer", "name", "ipt-b" + i,
          "netns", "ipt-ul");
      run("ip", "-n", "ipt-n" + i, "addr", "add", "10.77.0." + i + "/24", "dev", "ipt-v" + i);
      run("ip", "-n", "ipt-n" + i, "link", "set", "ipt-v" + i, "up");
      run("ip", "-n", "ipt-n" + i, "link", "set", "lo", "up");
      run("ip", "-n", "ipt-ul", "link", "set", "ipt-b" + i, "master", "ipt-br", "up");
    }
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (ChildNode c : children) {
      c.close();
    }
    removeNamespaces();
  }

  private static List<String> leaseLines(ChildNode c) {
    return c.askAll("leases", "DONE leases");
  }

  @Test
  void minorityClaimsNothingAndNoBlockIsHeldTwiceAfterTheMerge() throws Exception {
    Path journals = Files.createTempDirectory("ipt-ipam-partition");
    String cluster = "ipt-" + UUID.randomUUID();
    String members = "10.77.0.1:5701,10.77.0.2:5701,10.77.0.3:5701";
    for (int i = 1; i <= 3; i++) {
      children.add(ChildNode.start("p" + i, List.of("ip", "netns", "exec", "ipt-n" + i), Path.of("target", "ipt-logs"),
          "node=ipt-p" + i, "bind=10.77.0." + i, "port=5701", "members=" + members, "expected=3",
          "journal=" + journals, "preferred=10.128." + i + ".0/24", "cluster=" + cluster, "mergeDelay=5"));
    }
    for (int i = 1; i <= 3; i++) {
      assertEquals("READY ipt-p" + i + " 10.128." + i + ".0/24",
          children.get(i - 1).await("READY ipt-p" + i, Duration.ofSeconds(120)));
    }
    ChildNode majority = children.get(0);
    ChildNode minority = children.get(2);

    run("ip", "-n", "ipt-n3", "link", "set", "ipt-v3", "down");
    Poll.until("the split seen on both sides", Duration.ofSeconds(60),
        () -> minority.ask("members", "MEMBERS").equals("MEMBERS 1")
            && majority.ask("members", "MEMBERS").equals("MEMBERS 2"));

    // Both halves get a new node that wants the same block.
    minority.send("deploy ipt-x3 10.128.200.0/24");
    majority.send("deploy ipt-x1 10.128.200.0/24");
    assertEquals("READY ipt-x1 10.128.200.0/24", majority.await("READY ipt-x1", Duration.ofSeconds(60)));
    majority.send("alloc ipt-x1 maj- 20 4");
    majority.await(l -> l.equals("DONE alloc ipt-x1 maj-"), 0, Duration.ofSeconds(60));
    assertEquals(20, majority.lines().stream().filter(l -> l.startsWith("ACK ipt-x1 maj-")).count());

    // The minority keeps serving its existing block but claims nothing new.
    Poll.until("the minority's new node has tried to claim", Duration.ofSeconds(30),
        () -> minority.ask("status ipt-x3", "STATUS ipt-x3").contains("majority"));
    minority.send("alloc ipt-x3 min- 3 1");
    minority.await(l -> l.equals("DONE alloc ipt-x3 min-"), 0, Duration.ofSeconds(60));
    assertEquals(3, minority.lines().stream().filter(l -> l.startsWith("ERR ipt-x3 min-") && l.contains(" 11 "))
        .count(), minority.tail());
    minority.send("alloc ipt-p3 own- 5 1");
    minority.await(l -> l.equals("DONE alloc ipt-p3 own-"), 0, Duration.ofSeconds(60));
    assertEquals(5, minority.lines().stream()
        .filter(l -> l.startsWith("ACK ipt-p3 own-") && l.contains(" 10.128.3.")).count(), minority.tail());
    assertTrue(leaseLines(minority).stream().noneMatch(l -> l.contains("ipt-x3")), "minority claimed a block");
    assertTrue(minority.ask("status ipt-x3", "STATUS ipt-x3").startsWith("STATUS ipt-x3 false"));

    run("ip", "-n", "ipt-n3", "link", "set", "ipt-v3", "up");
    Poll.until("the halves merged", Duration.ofSeconds(120),
        () -> minority.ask("members", "MEMBERS").equals("MEMBERS 3"));
    String x3 = minority.await("READY ipt-x3", Duration.ofSeconds(120));
    assertTrue(!x3.endsWith("10.128.200.0/24"), "the minority's node got a block held by another: " + x3);

    // One holder per block and one block per node, and every node agrees with the cluster.
    Map<String, String> blockOfNode = new HashMap<>();
    for (String line : leaseLines(majority)) {
      String[] w = line.split(" ");
      assertEquals(null, blockOfNode.put(w[2], w[1]), "node " + w[2] + " holds two blocks");
    }
    assertEquals(5, blockOfNode.size(), blockOfNode.toString());
    Map<String, ChildNode> host = Map.of("ipt-p1", children.get(0), "ipt-p2", children.get(1),
        "ipt-p3", minority, "ipt-x1", majority, "ipt-x3", minority);
    for (Map.Entry<String, ChildNode> e : host.entrySet()) {
      String lease = e.getValue().askAll("view " + e.getKey(), "DONE view " + e.getKey()).stream()
          .filter(l -> l.startsWith("LEASE ")).findFirst().orElseThrow();
      assertEquals(blockOfNode.get(e.getKey()), lease.split(" ")[2], e.getKey() + " disagrees with the cluster");
    }
    assertEquals("10.128.3.0/24", blockOfNode.get("ipt-p3"), "the partitioned node kept its block");
    assertEquals(leaseLines(majority), leaseLines(minority));
  }
}

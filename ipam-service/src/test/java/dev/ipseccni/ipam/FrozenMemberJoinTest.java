package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A node joins while a member is frozen (SIGSTOP): its kernel still accepts TCP connections,
 * its JVM never answers on them. Members are real JVMs with the product's cluster and lease-map
 * configuration, each in its own network namespace (ipj-n1..4) on a bridge in ipj-ul.
 *
 * <p>Every member runs Hazelcast with one output thread, so every connection of a member is
 * written by the same thread as its connection to the frozen member: a fault where that
 * connection holds its thread (Hazelcast's single-port network spins there) stops the join in
 * every run instead of in the runs where the two connections happen to share a thread.
 */
class FrozenMemberJoinTest {
  private static final List<String> NAMESPACES = List.of("ipj-n1", "ipj-n2", "ipj-n3", "ipj-n4", "ipj-ul");
  private static final List<String> ONE_OUTPUT_THREAD = List.of("-Dhazelcast.io.output.thread.count=1");
  private static final Duration DEADLINE = Duration.ofSeconds(90);
  private final List<ChildNode> members = new ArrayList<>();
  private String cluster;

  @BeforeEach
  void underlay() throws Exception {
    assertTrue("root".equals(System.getProperty("user.name")), "needs root for network namespaces");
    removeNamespaces();
    PartitionTest.fourMembersOnABridge("ipj-", "10.79.0.");
    cluster = "ipj-" + UUID.randomUUID();
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (ChildNode m : members) {
      m.close(); // SIGKILL, which also ends a stopped process
    }
    removeNamespaces();
  }

  private static void removeNamespaces() throws Exception {
    for (String ns : NAMESPACES) {
      if (Files.exists(Path.of("/run/netns", ns))) {
        PartitionTest.run("ip", "netns", "del", ns);
      }
    }
  }

  /** Starts member {@code i} (in ipj-n{@code i}, 10.79.0.{@code i}) of a cluster of three expected members. */
  private ChildNode start(int i) throws Exception {
    String list = "10.79.0.1:5701,10.79.0.2:5701,10.79.0.3:5701,10.79.0.4:5701";
    ChildNode m = ChildNode.start(LeaseMapMember.class, "m" + i, List.of("ip", "netns", "exec", "ipj-n" + i),
        ONE_OUTPUT_THREAD, Path.of("target", "ipj-logs"), "node=m" + i, "bind=10.79.0." + i, "port=5701",
        "members=" + list, "expected=3", "cluster=" + cluster, "mergeDelay=15", "graceMillis=1000");
    members.add(m);
    return m;
  }

  private static String members(ChildNode m) {
    return m.ask("members", "MEMBERS");
  }

  /** Drops everything in and out of member {@code i}'s link, as the lab cuts a node (ARP still answered). */
  private static void cut(int i) throws Exception {
    for (String[] rule : List.of(new String[] {"PREROUTING", "-i"}, new String[] {"OUTPUT", "-o"})) {
      PartitionTest.run("ip", "netns", "exec", "ipj-n" + i, "iptables", "-w", "-t", "raw", "-I", rule[0], rule[1],
          "ipj-v" + i, "-j", "DROP");
    }
  }

  /**
   * The lab's PartitionPastGraceTest up to node4's join: member 1 (the first, so the master) frozen,
   * member 3 cut off, member 2 alone and master of itself; member 4 starts with all four in its
   * join list. It must join member 2 while member 1 stays frozen.
   */
  @Test
  void aNodeJoinsWhileTheMasterIsFrozenAndAnotherMemberIsCutOff() throws Exception {
    for (int i = 1; i <= 3; i++) {
      start(i).await("STARTED", Duration.ofMinutes(3));
    }
    Poll.until("3 members everywhere", DEADLINE, () -> members.stream().allMatch(m -> members(m).startsWith("MEMBERS 3 ")));
    ChildNode frozen = members.get(0);
    PartitionTest.run("kill", "-STOP", Long.toString(frozen.pid()));
    cut(3);
    ChildNode alone = members.get(1);
    Poll.until("member 2 alone", DEADLINE, () -> members(alone).equals("MEMBERS 1 [10.79.0.2]"));

    ChildNode joining = start(4);
    joining.await("STARTED", DEADLINE);
    assertEquals("MEMBERS 2 [10.79.0.2, 10.79.0.4]", members(joining));
    assertEquals("MEMBERS 2 [10.79.0.2, 10.79.0.4]", members(alone));
  }
}

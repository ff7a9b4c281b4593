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
 * The lease map across a real split-brain merge, in both directions. Three members, each in its
 * own network namespace (ipm-n1..3) on a bridge in a fourth (ipm-ul); member 2's link is cut,
 * so the halves are {1, 3} and {2}. A block held by node3 at epoch 1 before the split is taken
 * by node4 at epoch 2 in one half; after the link is back and Hazelcast merged the halves, every
 * member must see node4's claim, whichever half held it: Hazelcast merges the smaller half into
 * the larger, and in the lab the larger half can be the stale one (a frozen member whose member
 * list is still the one before the split).
 *
 * <p>Every member may write here ({@code expectedMembers} 1): what is under test is the merge,
 * not who may claim during the split.
 */
class LeaseMergeTest {
  private static final List<String> NAMESPACES = List.of("ipm-n1", "ipm-n2", "ipm-n3", "ipm-n4", "ipm-ul");
  private static final String BLOCK = "10.128.3.0/24";
  private static final long GRACE_MILLIS = 1000;
  private static final Duration DEADLINE = Duration.ofSeconds(90);
  private final List<ChildNode> members = new ArrayList<>();

  @BeforeEach
  void underlay() throws Exception {
    assertTrue("root".equals(System.getProperty("user.name")), "needs root for network namespaces");
    removeNamespaces();
    PartitionTest.fourMembersOnABridge("ipm-", "10.78.0.");
    cluster = "ipm-" + UUID.randomUUID();
  }

  private String cluster;

  /** Starts member {@code i} (in ipm-n{@code i}, 10.78.0.{@code i}) of a cluster expecting {@code expected}. */
  private ChildNode start(int i, int expected) throws Exception {
    String list = "10.78.0.1:5701,10.78.0.2:5701,10.78.0.3:5701,10.78.0.4:5701";
    ChildNode m = ChildNode.start(LeaseMapMember.class, "m" + i, List.of("ip", "netns", "exec", "ipm-n" + i),
        Path.of("target", "ipm-logs"), "node=m" + i, "bind=10.78.0." + i, "port=5701", "members=" + list,
        "expected=" + expected, "cluster=" + cluster, "mergeDelay=5", "graceMillis=" + GRACE_MILLIS);
    members.add(m);
    m.await("STARTED", Duration.ofMinutes(3));
    return m;
  }

  private void threeMembers(int expected) throws Exception {
    for (int i = 1; i <= 3; i++) {
      start(i, expected);
    }
    Poll.until("3 members everywhere", DEADLINE, () -> members.stream().allMatch(m -> members(m) == 3));
  }

  private static long pid(ChildNode m) {
    return Long.parseLong(m.await("STARTED", DEADLINE).split(" ")[1]);
  }

  private static void signal(String signal, ChildNode m) throws Exception {
    PartitionTest.run("kill", "-" + signal, Long.toString(pid(m)));
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (ChildNode m : members) {
      m.close();
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

  private static int members(ChildNode m) {
    return Integer.parseInt(m.ask("members", "MEMBERS").split(" ")[1]);
  }

  private static String value(ChildNode m) {
    return m.ask("get " + BLOCK, "VALUE " + BLOCK).substring(("VALUE " + BLOCK + " ").length());
  }

  /** Claims until the claim is the one asked for (split-brain protection counts a member in after its first heartbeat). */
  private static String claim(ChildNode m, String node) {
    String[] answer = new String[1];
    Poll.until(node + " claims " + BLOCK, DEADLINE, () -> {
      answer[0] = m.ask("claim " + node + " " + BLOCK, "CLAIM ");
      return answer[0].startsWith("CLAIM " + BLOCK + " " + node + " ");
    }, () -> answer[0]);
    return answer[0].substring(("CLAIM " + BLOCK + " ").length());
  }

  private void link(int member, String state) throws Exception {
    PartitionTest.run("ip", "-n", "ipm-n" + member, "link", "set", "ipm-v" + member, state);
  }

  /**
   * node3 holds the block at epoch 1 everywhere; member 2 is cut off; node3's lease passes its
   * grace; node4 takes the block (epoch 2) in the half of member {@code takerMember}, which renews it
   * from then on; the link comes back.
   */
  private void takeOverInOneHalfThenHeal(int takerMember) throws Exception {
    threeMembers(1);
    ChildNode taker = members.get(takerMember - 1);
    assertEquals("node3 1", claim(members.get(0), "node3"));
    long claimedAt = System.currentTimeMillis();
    for (ChildNode m : members) {
      assertEquals("node3 1", value(m));
    }
    link(2, "down");
    Poll.until("the split seen on both sides", DEADLINE, () -> members(members.get(1)) == 1
        && members(members.get(0)) == 2 && members(members.get(2)) == 2);
    Poll.until("node3's lease past its grace", DEADLINE,
        () -> System.currentTimeMillis() - claimedAt > GRACE_MILLIS + 100);
    assertEquals("node4 2", claim(taker, "node4"));
    taker.ask("renew-loop node4 " + BLOCK, "RENEWING");
    link(2, "up");
    Poll.until("the halves merged", DEADLINE, () -> members.stream().allMatch(m -> members(m) == 3));
  }

  /** Every member sees node4's claim, and no renewal of it ever answered that the block was another's. */
  private void everyMemberSeesNode4sClaim() {
    Poll.until("node4's claim (epoch 2) on every member", DEADLINE,
        () -> members.stream().allMatch(m -> value(m).equals("node4 2")),
        () -> members.stream().map(m -> value(m)).toList().toString());
    neverLost();
  }

  private void neverLost() {
    for (ChildNode m : members) {
      assertEquals(List.of(), m.lines().stream().filter(l -> l.startsWith("LOST")).toList(),
          "renewals of node4's lease answered with another holder");
    }
  }

  @Test
  void theSmallerHalfsNewerClaimWinsTheMerge() throws Exception {
    takeOverInOneHalfThenHeal(2);
    everyMemberSeesNode4sClaim();
  }

  @Test
  void theLargerHalfsNewerClaimSurvivesTheMerge() throws Exception {
    takeOverInOneHalfThenHeal(1);
    everyMemberSeesNode4sClaim();
  }

  /**
   * The lab's case (PartitionPastGraceTest), with members only: member 1 frozen (SIGSTOP) across
   * all of it, member 3 cut off, member 4 joins member 2 and takes node3's block; member 1 resumes
   * with its member list of before (so it can count as the larger half for a few seconds) and
   * the lease map of before. Member 4 renews node4's lease all along, as its IPAM service would:
   * no renewal may answer that the block is another's.
   */
  @Test
  void aFrozenMembersStaleCopyNeverWinsTheMerge() throws Exception {
    threeMembers(3);
    ChildNode frozen = members.get(0);
    assertEquals("node3 1", claim(members.get(2), "node3"));
    long claimedAt = System.currentTimeMillis();
    signal("STOP", frozen);
    try {
      link(3, "down");
      Poll.until("member 2 alone", DEADLINE, () -> members(members.get(1)) == 1);
      // as in the lab, the new member comes once the lease is past its grace and the split has settled
      Poll.until("node3's lease past its grace", DEADLINE,
          () -> System.currentTimeMillis() - claimedAt > GRACE_MILLIS + 3000);
      ChildNode taker = start(4, 3);
      Poll.until("members 2 and 4 together", DEADLINE,
          () -> members(members.get(1)) == 2 && members(taker) == 2);
      assertEquals("node4 2", claim(taker, "node4"));
      taker.ask("renew-loop node4 " + BLOCK, "RENEWING");
    } finally {
      signal("CONT", frozen);
    }
    List<ChildNode> live = List.of(frozen, members.get(1), members.get(3));
    Poll.until("members 1, 2 and 4 merged", DEADLINE, () -> live.stream()
        .allMatch(m -> m.ask("members", "MEMBERS").equals("MEMBERS 3 [10.78.0.1, 10.78.0.2, 10.78.0.4]")));
    Poll.until("node4's claim (epoch 2) on members 1, 2 and 4", DEADLINE,
        () -> live.stream().allMatch(m -> value(m).equals("node4 2")),
        () -> live.stream().map(m -> value(m)).toList().toString());
    neverLost();
  }
}

package dev.ipseccni.bus;

import com.hazelcast.cluster.Member;
import com.hazelcast.cluster.MembershipEvent;
import com.hazelcast.cluster.MembershipListener;
import com.hazelcast.core.HazelcastInstance;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.function.BiConsumer;

/**
 * The cluster's members by node name, from Hazelcast's own membership listener (the
 * Vert.x node-listener slot is single and belongs to HA).
 */
public final class ClusterMembership {
  private final HazelcastInstance hz;

  ClusterMembership(HazelcastInstance hz) {
    this.hz = hz;
  }

  /** Node names of the current members, sorted. */
  public List<String> nodes() {
    return hz.getCluster().getMembers().stream().map(ClusterMembership::nodeName).sorted().toList();
  }

  public static String nodeName(Member member) {
    String node = member.getAttribute(ClusterBootstrap.NODE_ATTRIBUTE);
    return node != null ? node : member.getAddress().toString();
  }

  public static String address(Member member) {
    return member.getAddress().getHost() + ":" + member.getAddress().getPort();
  }

  /**
   * Calls {@code onJoin} / {@code onLeave} with each member that joins or leaves (on a
   * Hazelcast thread: hand work over to the event loop).
   */
  public UUID listen(BiConsumer<String, String> onJoin, BiConsumer<String, String> onLeave) {
    return hz.getCluster().addMembershipListener(new MembershipListener() {
      @Override
      public void memberAdded(MembershipEvent event) {
        onJoin.accept(nodeName(event.getMember()), address(event.getMember()));
      }

      @Override
      public void memberRemoved(MembershipEvent event) {
        onLeave.accept(nodeName(event.getMember()), address(event.getMember()));
      }
    });
  }

  public Set<Member> members() {
    return hz.getCluster().getMembers();
  }
}

package dev.ipseccni.bus;

import java.util.List;
import java.util.Objects;

/**
 * How this node joins the agents' cluster.
 *
 * @param clusterName Hazelcast cluster name; agents of different clusters never merge
 * @param nodeName this node's name, published as a member attribute
 * @param bindAddress the node's underlay address: Hazelcast and the event bus bind only to it
 * @param port Hazelcast member port
 * @param eventBusPort Vert.x event-bus port (0 picks a free one)
 * @param members TCP-IP join list, host or host:port
 * @param liteMember join without owning data partitions (large clusters)
 * @param timing failure detection and merge timings
 */
public record ClusterSettings(String clusterName, String nodeName, String bindAddress, int port, int eventBusPort,
                              List<String> members, boolean liteMember, Timing timing) {
  public ClusterSettings {
    Objects.requireNonNull(clusterName, "clusterName");
    Objects.requireNonNull(nodeName, "nodeName");
    Objects.requireNonNull(bindAddress, "bindAddress");
    members = List.copyOf(members);
    Objects.requireNonNull(timing, "timing");
  }

  /**
   * @param joinWaitSeconds how long a starting member waits for others before it forms a cluster alone
   * @param heartbeatSeconds heartbeat interval
   * @param maxNoHeartbeatSeconds a member silent this long is evicted (a SIGSTOP'd agent, a cut link)
   * @param mergeDelaySeconds delay of the first and every later split-brain merge check
   */
  public record Timing(int joinWaitSeconds, int heartbeatSeconds, int maxNoHeartbeatSeconds, int mergeDelaySeconds) {
    /** Hung member evicted in about 5 s, partitions merged within about 30 s of healing. */
    public static final Timing DEFAULT = new Timing(1, 1, 5, 15);
  }
}

package dev.ipseccni.bus;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
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
 * @param tls mutual TLS for the event bus's TCP connections between agents; empty = plain TCP.
 *     Hazelcast's own member protocol stays unencrypted either way (see docs/security.md)
 * @param serviceDns a DNS name whose A records are the members (a headless Service); when present
 *     Hazelcast's Kubernetes discovery in DNS-lookup mode finds the members, and {@code members}
 *     is not used
 */
public record ClusterSettings(String clusterName, String nodeName, String bindAddress, int port, int eventBusPort,
                              List<String> members, boolean liteMember, Timing timing, Optional<Tls> tls,
                              Optional<String> serviceDns) {
  public ClusterSettings {
    Objects.requireNonNull(clusterName, "clusterName");
    Objects.requireNonNull(nodeName, "nodeName");
    Objects.requireNonNull(bindAddress, "bindAddress");
    members = List.copyOf(members);
    Objects.requireNonNull(timing, "timing");
    Objects.requireNonNull(tls, "tls");
    Objects.requireNonNull(serviceDns, "serviceDns");
  }

  /** With a static member list. */
  public ClusterSettings(String clusterName, String nodeName, String bindAddress, int port, int eventBusPort,
                         List<String> members, boolean liteMember, Timing timing, Optional<Tls> tls) {
    this(clusterName, nodeName, bindAddress, port, eventBusPort, members, liteMember, timing, tls, Optional.empty());
  }

  /** Without TLS on the event bus. */
  public ClusterSettings(String clusterName, String nodeName, String bindAddress, int port, int eventBusPort,
                         List<String> members, boolean liteMember, Timing timing) {
    this(clusterName, nodeName, bindAddress, port, eventBusPort, members, liteMember, timing, Optional.empty());
  }

  /** The same settings with the event bus on mutual TLS. */
  public ClusterSettings withTls(Tls tls) {
    return new ClusterSettings(clusterName, nodeName, bindAddress, port, eventBusPort, members, liteMember, timing,
        Optional.of(tls), serviceDns);
  }

  /** The same settings with the members found by resolving this DNS name instead of a static list. */
  public ClusterSettings withServiceDns(String name) {
    return new ClusterSettings(clusterName, nodeName, bindAddress, port, eventBusPort, members, liteMember, timing,
        tls, Optional.of(name));
  }

  /**
   * PEM files for the event bus: this agent's certificate and key, and the CA that signed
   * every agent's certificate. Each side presents its certificate and requires the other's.
   */
  public record Tls(Path certFile, Path keyFile, Path caFile) {
    public Tls {
      Objects.requireNonNull(certFile, "certFile");
      Objects.requireNonNull(keyFile, "keyFile");
      Objects.requireNonNull(caFile, "caFile");
    }
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

package dev.ipseccni.bus;

/**
 * Every event-bus address the services use. Published events go to cluster-wide
 * addresses; request/reply addresses carry the node name so a request never leaves
 * the node it is meant for.
 */
public final class Addresses {

  private Addresses() {}

  // Published to every node (cluster-wide).
  public static final String LEASE_ACQUIRED = "lease.acquired";
  public static final String LEASE_RENEWED = "lease.renewed";
  public static final String LEASE_RELEASED = "lease.released";
  /**
   * A service that has just started asks every node to announce its lease again: lease
   * events published before it subscribed are not replayed. Each IPAM that holds a lease
   * answers by publishing {@link #LEASE_RENEWED}.
   */
  public static final String LEASE_SYNC = "lease.sync";
  /**
   * Request/reply, answered by any IPAM service: the cluster's lease map as it reads it now
   * ({@link dev.ipseccni.bus.message.LeaseSnapshot}); the body is the asking component's name.
   * {@link PeerView} resyncs from it periodically.
   */
  public static final String LEASE_SNAPSHOT = "lease.snapshot";
  public static final String ADDRESS_ALLOCATED = "address.allocated";
  public static final String ADDRESS_RELEASED = "address.released";
  /** A pod's address is no longer this node's: its block was taken over (payload AddressEvent). */
  public static final String ADDRESS_ORPHANED = "address.orphaned";
  public static final String POD_ADDED = "pod.added";
  public static final String POD_DELETED = "pod.deleted";
  public static final String TUNNEL_UP = "tunnel.up";
  public static final String TUNNEL_DOWN = "tunnel.down";
  /** A peer tunnel does not come up and charon said why ({@link dev.ipseccni.bus.message.TunnelFailure}). */
  public static final String TUNNEL_FAILED = "tunnel.failed";
  /**
   * A tunnel service connected to charon and checked that it can do the configured
   * proposals ({@link dev.ipseccni.bus.message.CharonCheck}).
   */
  public static final String TUNNEL_CHARON = "tunnel.charon";
  /**
   * A tunnel service announces which cluster secret it uses (a fingerprint, never the
   * secret): when it starts (asking the others to answer) and when it has loaded a new one.
   */
  public static final String TUNNEL_SECRET = "tunnel.secret";
  public static final String FIREWALL_ASSERTED = "firewall.asserted";
  public static final String FIREWALL_DRIFT = "firewall.drift";
  public static final String AGENT_STARTED = "agent.started";
  public static final String AGENT_STOPPING = "agent.stopping";
  public static final String MEMBER_JOINED = "member.joined";
  public static final String MEMBER_LEFT = "member.left";

  /** All published event addresses, for observers that record every event. */
  public static final java.util.List<String> EVENTS = java.util.List.of(
      LEASE_ACQUIRED, LEASE_RENEWED, LEASE_RELEASED, LEASE_SYNC,
      ADDRESS_ALLOCATED, ADDRESS_RELEASED, ADDRESS_ORPHANED,
      POD_ADDED, POD_DELETED,
      TUNNEL_UP, TUNNEL_DOWN, TUNNEL_FAILED, TUNNEL_CHARON, TUNNEL_SECRET,
      FIREWALL_ASSERTED, FIREWALL_DRIFT,
      AGENT_STARTED, AGENT_STOPPING,
      MEMBER_JOINED, MEMBER_LEFT);

  // Request/reply, local to one node.
  public static String ipamAllocate(String node) {
    return "ipam." + node + ".allocate";
  }

  /** Replies with the {@link dev.ipseccni.bus.message.Allocation} it released, or null when there was none. */
  public static String ipamRelease(String node) {
    return "ipam." + node + ".release";
  }

  public static String ipamCheck(String node) {
    return "ipam." + node + ".check";
  }

  public static String ipamGc(String node) {
    return "ipam." + node + ".gc";
  }

  /**
   * Where a local service answers readiness questions with its
   * {@link dev.ipseccni.bus.message.ComponentStatus}; one address per component, because a
   * request reaches only one consumer.
   */
  public static String nodeStatus(String node, String component) {
    return "node.status." + node + "." + component;
  }

  /** Component names, as used in {@link #nodeStatus} and in the agent's {@code services} list. */
  public static final String IPAM = "ipam";
  public static final String TUNNEL = "tunnel";
  public static final String FIREWALL = "firewall";
  public static final String CNI_GATEWAY = "cni-gateway";
  /** Not a service of its own: the node's bridge (cni0) with the block's gateway address. */
  public static final String BRIDGE = "bridge";
}

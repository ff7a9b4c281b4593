package dev.ipseccni.tunnel;

import dev.ipseccni.tunnel.identity.IdentityException;
import dev.ipseccni.tunnel.identity.IkeAuth;
import dev.ipseccni.tunnel.identity.NodeIdentity;
import dev.ipseccni.tunnel.vici.ViciMessage;
import dev.ipseccni.tunnel.vici.ViciSession;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.logging.Logger;

/**
 * The control plane inside IPsec (kernel datapath, certificates): Hazelcast's and the event
 * bus's TCP ports between two nodes' underlay addresses travel only in a host-to-host,
 * transport-mode CHILD SA whose peer holds a certificate of the cluster CA naming that address.
 *
 * <p>Set up from the join list before the node joins, since the mesh of pod tunnels is built
 * from what the cluster distributes and cannot carry the cluster's own traffic. Per peer address
 * one connection, {@code control-<address>}, with trap policies for two children: {@code dial}
 * (any port of ours to the peer's control ports) and {@code serve} (our control ports to any port
 * of the peer), so both the connections we open and those we accept are covered. One responder
 * connection, {@code control-any}, accepts any CA-signed peer for its own address, so a node not
 * on our join list can join through us; a member that the cluster announces gets its own
 * connection at once ({@link #add}).
 *
 * <p>The identities are the underlay addresses (the certificate's IP subjectAltName), not the node
 * names of the pod tunnels: charon tells the two kinds of connection between the same pair of
 * addresses apart by the identity the peer presents. Connections are only added while the agent
 * runs: an address that left keeps its trap policies, which send nothing but IKE to it.
 *
 * <p>A node's certificate is good for the control plane only from the address it names: charon
 * checks the certificate, not where the peer sits, so a control IKE SA whose peer identity is
 * not the address it came from (a node's key used from another host, a revoked node's among
 * them) is terminated the moment charon reports it up, before the peer's first retransmitted
 * SYN. The firewall closes a denied node's own address.
 */
public final class ControlPlaneTunnels implements AutoCloseable {
  public static final String PREFIX = "control-";
  static final String ANY = PREFIX + "any";
  static final String DIAL = "dial";
  static final String SERVE = "serve";
  /** How long a start waits for charon's VICI socket (the charon container may start after the agent). */
  static final Duration CHARON_WAIT = Duration.ofSeconds(120);
  private static final Logger LOG = Logger.getLogger(ControlPlaneTunnels.class.getName());

  private final TunnelSettings settings;
  private final List<Integer> ports;
  private final Set<String> peers = new LinkedHashSet<>();
  private NodeIdentity identity;
  private ViciSession session;

  /** @param ports the control-plane TCP ports (Hazelcast's and the event bus's), the same on every node */
  public ControlPlaneTunnels(TunnelSettings settings, Collection<Integer> ports) {
    if (settings.datapath() != Datapath.KERNEL || !(settings.auth() instanceof IkeAuth.Certificates)) {
      throw new IllegalArgumentException("the control plane rides IPsec only with the kernel datapath and certificates");
    }
    if (ports.isEmpty()) {
      throw new IllegalArgumentException("no control-plane port");
    }
    this.settings = settings;
    this.ports = List.copyOf(new java.util.TreeSet<>(ports));
  }

  /**
   * Checks this node's identity, waits for charon, gives it the identity and the connections to
   * the join list's addresses (this node's own left out) and the responder connection.
   */
  public synchronized void start(Collection<String> joinList) throws IOException, IdentityException, InterruptedException {
    identity = NodeIdentity.load((IkeAuth.Certificates) settings.auth(), settings.nodeName(),
        settings.underlayAddress(), Instant.now());
    for (String address : joinList) {
      if (!address.equals(settings.underlayAddress())) {
        peers.add(address);
      }
    }
    long deadline = System.nanoTime() + CHARON_WAIT.toNanos();
    IOException last = null;
    while (System.nanoTime() < deadline) {
      try {
        ensure();
        LOG.info(() -> "control plane inside IPsec: ports " + ports + " to " + peers + " and any CA-signed peer");
        return;
      } catch (IOException e) {
        if (last == null || !String.valueOf(e.getMessage()).equals(last.getMessage())) {
          LOG.warning("control plane: waiting for charon on " + settings.viciSocket() + ": " + e.getMessage());
        }
        last = e;
        Thread.sleep(500); // poll interval while charon starts, bounded by the deadline
      }
    }
    throw new IOException("control plane: charon did not answer on " + settings.viciSocket() + " within "
        + CHARON_WAIT.toSeconds() + " s, so the node cannot join without sending its control traffic in clear: "
        + (last == null ? "no attempt" : last.getMessage()), last);
  }

  /** A member the cluster announced: its connection is loaded unless it has one. */
  public synchronized void add(String address) {
    if (address.equals(settings.underlayAddress()) || !peers.add(address)) {
      return;
    }
    try {
      ensure();
      LOG.info(() -> "control plane: loaded " + connName(address));
    } catch (IOException e) {
      // the tunnel service's reconcile calls ensure() again
      LOG.warning("control plane: cannot load " + connName(address) + " yet: " + e.getMessage());
    }
  }

  /** The addresses with a connection of their own. */
  public synchronized Set<String> peers() {
    return Set.copyOf(peers);
  }

  /**
   * Loads what charon lacks (all of it after a charon restart): the identity, the responder
   * connection, one connection per peer. Cheap when nothing is missing (one get-conns).
   */
  public synchronized void ensure() throws IOException {
    try {
      load();
    } catch (IOException e) {
      closeSession();
      throw e;
    }
  }

  private void load() throws IOException {
    boolean fresh = false;
    if (session == null || !session.isOpen()) {
      session = ViciSession.connect(settings.viciSocket());
      fresh = true;
      ViciSession watched = session;
      watched.subscribe("ike-updown", e -> refuseMisplaced(watched, e.message()));
    }
    Set<String> loaded = new HashSet<>(session.getConns());
    if (fresh || !loaded.contains(ANY)) {
      session.loadKey("any", identity.privateKeyPem());
      session.loadCert("x509", "ca", identity.caPem());
      session.loadCert("x509", "none", identity.certificatePem());
    }
    if (!loaded.contains(ANY)) {
      session.loadConn(ANY, connection(null));
    }
    for (String peer : peers) {
      if (!loaded.contains(connName(peer))) {
        session.loadConn(connName(peer), connection(peer));
      }
    }
  }

  /** On charon's event thread: terminates a control IKE SA that came up with a certificate used away from its address. */
  private static void refuseMisplaced(ViciSession session, ViciMessage event) {
    if (!event.isYes("up")) {
      return;
    }
    misplaced(event).forEach((uniqueId, why) -> {
      LOG.warning(() -> "control plane: refused IKE SA #" + uniqueId + ": " + why);
      try {
        session.terminateIkeId(uniqueId);
      } catch (IOException e) {
        LOG.warning("control plane: cannot terminate IKE SA #" + uniqueId + ": " + e.getMessage());
      }
    });
  }

  /** The control IKE SAs of an ike-updown event whose peer identity is not its address: unique id -> why. */
  static java.util.Map<String, String> misplaced(ViciMessage event) {
    java.util.Map<String, String> out = new java.util.TreeMap<>();
    event.sections().forEach((name, sa) -> {
      if (!name.startsWith(PREFIX)) {
        return;
      }
      String id = sa.value("remote-id").orElse("");
      String host = sa.value("remote-host").orElse("");
      if (!sameAddress(id, host)) {
        out.put(sa.value("uniqueid").orElse("?"), "the peer at " + host + " presents the identity '" + id
            + "' (connection " + name + "): a node's certificate opens the control plane only from its own address");
      }
    });
    return out;
  }

  private static boolean sameAddress(String a, String b) {
    if (a.equals(b)) {
      return true;
    }
    try {
      // literals only: a name is no address, and must not be looked up
      return a.matches("[0-9a-fA-F:.]+") && b.matches("[0-9a-fA-F:.]+")
          && java.net.InetAddress.getByName(a).equals(java.net.InetAddress.getByName(b));
    } catch (java.net.UnknownHostException e) {
      return false;
    }
  }

  static String connName(String address) {
    return PREFIX + address;
  }

  /** The body of load-conn for one peer address, or for the responder connection ({@code peer} null). */
  ViciMessage connection(String peer) {
    String own = settings.underlayAddress();
    String remote = peer == null ? "dynamic" : peer + "/32";
    List<String> ownPorts = new ArrayList<>();
    List<String> peerPorts = new ArrayList<>();
    for (int port : ports) {
      ownPorts.add(own + "/32[tcp/" + port + "]");
      peerPorts.add(remote + "[tcp/" + port + "]");
    }
    Proposals p = settings.proposals();
    String start = peer == null ? "none" : "trap";
    ViciMessage.Builder conn = ViciMessage.builder()
        .put("version", 2)
        .list("local_addrs", List.of(own));
    if (peer != null) {
      conn.list("remote_addrs", List.of(peer));
    }
    return conn
        .put("encap", false)
        .put("mobike", false)
        .list("proposals", List.of(p.ike().split(",")))
        .put("dpd_delay", TunnelRenderer.DPD_DELAY)
        .put("rekey_time", TunnelRenderer.IKE_REKEY)
        .section("local", ViciMessage.builder().put("auth", "pubkey").put("id", own).build())
        .section("remote", ViciMessage.builder().put("auth", "pubkey").put("id", peer == null ? "%any" : peer)
            .list("cacerts", List.of(identity.caPem())).build())
        .section("children", ViciMessage.builder()
            .section(DIAL, child(List.of(own + "/32[tcp]"), peerPorts, start))
            .section(SERVE, child(ownPorts, List.of(remote + "[tcp]"), start))
            .build())
        .build();
  }

  private ViciMessage child(List<String> local, List<String> remote, String start) {
    return ViciMessage.builder()
        .list("local_ts", local)
        .list("remote_ts", remote)
        .list("esp_proposals", List.of(settings.proposals().esp().split(",")))
        .put("mode", "transport")
        .put("rekey_time", TunnelRenderer.CHILD_REKEY)
        .put("dpd_action", start.equals("trap") ? "trap" : "clear")
        .put("start_action", start)
        .build();
  }

  private void closeSession() {
    if (session != null) {
      session.close();
      session = null;
    }
  }

  @Override
  public synchronized void close() {
    closeSession();
  }
}

package dev.ipseccni.agent.api;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.message.AddressEvent;
import dev.ipseccni.bus.message.AgentEvent;
import dev.ipseccni.bus.message.FirewallEvent;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.MemberEvent;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.bus.message.PodEvent;
import dev.ipseccni.bus.message.TunnelEvent;
import dev.ipseccni.bus.message.TunnelFailure;
import io.vertx.core.Future;
import io.vertx.core.eventbus.EventBus;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The cluster as this node has seen it on the bus: every node's latest lease, its pods
 * and addresses, the state each node reports for its tunnel to each peer, its firewall,
 * and whether its agent runs. Built only from events, so it needs no service's classes
 * and is the same picture on every node that saw the same events. What happened before
 * this agent subscribed is not known, except what is re-announced (leases are renewed).
 *
 * <p>Thread-safe: events arrive on an event loop, the HTTP API reads from another.
 */
public final class ClusterView {

  /**
   * How one node reports its tunnel to one peer.
   *
   * @param failure why the tunnel does not come up, as charon last said (tunnel.failed): "authentication
   *     failed", "no proposal chosen", "peer not responding", …; empty while none is known or once it is up
   * @param failureDetail charon's log line behind {@code failure}
   * @param failureMillis when charon logged it (0 when there is no failure)
   */
  public record TunnelReport(String node, String peer, String peerBlock, String state, String reason,
                             long sinceMillis, String failure, String failureDetail, long failureMillis) {
    TunnelReport(String node, String peer, String peerBlock, String state, String reason, long sinceMillis) {
      this(node, peer, peerBlock, state, reason, sinceMillis, "", "", 0);
    }
  }

  /** A pod attached on a node, from pod.added. */
  public record PodView(String node, String containerId, String ifName, String podNamespace, String podName,
                        String address, long sinceMillis) {}

  /** A node's firewall as it last reported it. */
  public record FirewallView(String node, String lastEvent, List<String> chains, List<String> lastRepaired,
                             long repairs, long sinceMillis) {}

  /**
   * One node: its lease (if any was seen), agent state, member state and address pool use.
   *
   * @param agent "running" after agent.started or any event from it, "stopping" after agent.stopping
   * @param member whether the node is in the cluster membership as last reported
   * @param addressesUsed pod addresses allocated on it (address.allocated minus released, as seen)
   */
  public record NodeView(String node, String underlayAddress, String block, long epoch, String agent,
                         boolean member, long poolSize, int addressesUsed, long lastSeq, long lastEventMillis) {}

  /** A line of the mesh: the pair of nodes and what each side says. */
  public record MeshLink(String a, String b, String state, Optional<TunnelReport> fromA,
                         Optional<TunnelReport> fromB) {}

  /** Everything at once, for /cluster and the dashboard. */
  public record Snapshot(String observer, List<NodeView> nodes, List<MeshLink> tunnels, List<PodView> pods,
                         List<FirewallView> firewalls, long eventsSeen) {}

  private final String self;
  private final int recentCapacity;
  private final Map<String, NodeState> nodes = new TreeMap<>();
  private final ArrayDeque<Event> recent = new ArrayDeque<>();
  private final List<Consumer<Event>> listeners = new CopyOnWriteArrayList<>();
  private long eventsSeen;

  private static final class NodeState {
    NodeBlockLease lease;
    String agent = "unknown";
    boolean member;
    long lastSeq;
    long lastIncarnation;
    long lastEventMillis;
    final Map<String, TunnelReport> tunnels = new TreeMap<>();
    final Map<String, PodView> pods = new TreeMap<>();
    final Map<String, String> addresses = new TreeMap<>();
    FirewallView firewall;
  }

  public ClusterView(String self, int recentCapacity) {
    this.self = self;
    this.recentCapacity = recentCapacity;
  }

  public String self() {
    return self;
  }

  /** Calls the listener with every event, after it is recorded (on the bus's thread). */
  public void onEvent(Consumer<Event> listener) {
    listeners.add(listener);
  }

  /** Subscribes to every published address; completes once the cluster knows the subscriptions. */
  public Future<Void> subscribe(EventBus bus) {
    List<Future<Void>> registered = new ArrayList<>();
    for (String address : Addresses.EVENTS) {
      registered.add(bus.<Event>consumer(address, message -> record(message.body())).completion());
    }
    return Future.all(registered).mapEmpty();
  }

  public void record(Event event) {
    synchronized (this) {
      apply(event);
    }
    for (Consumer<Event> listener : listeners) {
      listener.accept(event);
    }
  }

  private NodeState node(String name) {
    return nodes.computeIfAbsent(name, n -> new NodeState());
  }

  private void apply(Event event) {
    eventsSeen++;
    if (recent.size() == recentCapacity) {
      recent.removeFirst();
    }
    recent.addLast(event);
    NodeState from = node(event.node());
    from.lastSeq = event.seq();
    from.lastIncarnation = event.incarnation();
    from.lastEventMillis = event.timestampMillis();
    if (!event.address().equals(Addresses.AGENT_STOPPING)) {
      from.agent = "running";
    }
    String address = event.address();
    var payload = event.payload();
    if (payload instanceof LeaseEvent le) {
      NodeBlockLease lease = le.lease();
      NodeState holder = node(lease.node());
      if (address.equals(Addresses.LEASE_RELEASED)) {
        if (holder.lease != null && holder.lease.block().equals(lease.block())) {
          holder.lease = null;
        }
      } else if (holder.lease == null || holder.lease.epoch() <= lease.epoch()
          || !holder.lease.block().equals(lease.block())) {
        holder.lease = lease;
      }
    } else if (payload instanceof TunnelEvent te) {
      from.tunnels.put(te.peer(), new TunnelReport(event.node(), te.peer(), te.peerBlock(),
          address.equals(Addresses.TUNNEL_UP) ? "up" : "down", te.reason(), event.timestampMillis()));
    } else if (payload instanceof TunnelFailure tf) {
      TunnelReport before = from.tunnels.get(tf.peer());
      // a tunnel that fails to come up is down; the time is when it was last reported up or down
      String state = before == null || before.state().equals("up") ? "down" : before.state();
      long since = before == null || before.state().equals("up") ? event.timestampMillis() : before.sinceMillis();
      from.tunnels.put(tf.peer(), new TunnelReport(event.node(), tf.peer(), tf.peerBlock(), state, tf.reason(), since,
          tf.reason(), tf.detail(), tf.seenMillis()));
    } else if (payload instanceof PodEvent pe) {
      String key = pe.containerId() + "/" + pe.ifName();
      if (address.equals(Addresses.POD_ADDED)) {
        from.pods.put(key, new PodView(event.node(), pe.containerId(), pe.ifName(), pe.podNamespace(),
            pe.podName(), pe.address(), event.timestampMillis()));
      } else {
        from.pods.remove(key);
      }
    } else if (payload instanceof AddressEvent ae) {
      String key = ae.network() + "/" + ae.containerId() + "/" + ae.ifName();
      if (address.equals(Addresses.ADDRESS_ALLOCATED)) {
        from.addresses.put(key, ae.address());
      } else {
        from.addresses.remove(key);
      }
    } else if (payload instanceof FirewallEvent fe) {
      long repairs = from.firewall == null ? 0 : from.firewall.repairs();
      boolean drift = address.equals(Addresses.FIREWALL_DRIFT);
      from.firewall = new FirewallView(event.node(), address, fe.chains(), fe.repaired(),
          drift ? repairs + 1 : repairs, event.timestampMillis());
    } else if (payload instanceof AgentEvent && address.equals(Addresses.AGENT_STOPPING)) {
      from.agent = "stopping";
    } else if (payload instanceof MemberEvent me) {
      node(me.member()).member = address.equals(Addresses.MEMBER_JOINED);
    }
  }

  /** Marks which nodes are members now (the membership list is not an event stream at start). */
  public synchronized void members(List<String> current) {
    for (Map.Entry<String, NodeState> e : nodes.entrySet()) {
      e.getValue().member = current.contains(e.getKey());
    }
    for (String m : current) {
      node(m).member = true;
    }
  }

  public synchronized List<Event> recent() {
    return List.copyOf(recent);
  }

  public synchronized Snapshot snapshot() {
    List<NodeView> nodeViews = new ArrayList<>();
    List<PodView> pods = new ArrayList<>();
    List<FirewallView> firewalls = new ArrayList<>();
    for (Map.Entry<String, NodeState> e : nodes.entrySet()) {
      NodeState s = e.getValue();
      NodeBlockLease l = s.lease;
      nodeViews.add(new NodeView(e.getKey(), l == null ? "" : l.underlayAddress(), l == null ? "" : l.block(),
          l == null ? 0 : l.epoch(), s.agent, s.member, l == null ? 0 : poolSize(l.block()), s.addresses.size(),
          s.lastSeq, s.lastEventMillis));
      pods.addAll(s.pods.values());
      if (s.firewall != null) {
        firewalls.add(s.firewall);
      }
    }
    return new Snapshot(self, nodeViews, links(), pods, firewalls, eventsSeen);
  }

  /** The tunnels this node reports, by peer, and a "missing" line for each leased peer it does not report. */
  public synchronized List<TunnelReport> tunnelsOf(String node) {
    NodeState s = nodes.get(node);
    List<TunnelReport> reports = new ArrayList<>(s == null ? List.of() : s.tunnels.values());
    for (Map.Entry<String, NodeState> e : nodes.entrySet()) {
      NodeBlockLease peerLease = e.getValue().lease;
      if (!e.getKey().equals(node) && peerLease != null && (s == null || !s.tunnels.containsKey(e.getKey()))) {
        reports.add(new TunnelReport(node, e.getKey(), peerLease.block(), "unknown", "no tunnel event seen", 0));
      }
    }
    reports.sort(java.util.Comparator.comparing(TunnelReport::peer));
    return reports;
  }

  public synchronized Optional<FirewallView> firewallOf(String node) {
    NodeState s = nodes.get(node);
    return s == null ? Optional.empty() : Optional.ofNullable(s.firewall);
  }

  public synchronized List<PodView> podsOf(String node) {
    NodeState s = nodes.get(node);
    return s == null ? List.of() : List.copyOf(s.pods.values());
  }

  /** Tunnels per node and state, for the metrics. */
  public synchronized Map<String, long[]> tunnelCounts() {
    Map<String, long[]> counts = new TreeMap<>();
    for (Map.Entry<String, NodeState> e : nodes.entrySet()) {
      long up = e.getValue().tunnels.values().stream().filter(t -> t.state().equals("up")).count();
      counts.put(e.getKey(), new long[] {up, e.getValue().tunnels.size() - up});
    }
    return counts;
  }

  /**
   * One line per pair of nodes that either side reports or that both hold leases: down if
   * either side says down, up if a side says up and none says down, unknown otherwise.
   */
  private List<MeshLink> links() {
    List<String> names = new ArrayList<>(nodes.keySet());
    List<MeshLink> links = new ArrayList<>();
    for (int i = 0; i < names.size(); i++) {
      for (int j = i + 1; j < names.size(); j++) {
        String a = names.get(i);
        String b = names.get(j);
        Optional<TunnelReport> fromA = Optional.ofNullable(nodes.get(a).tunnels.get(b));
        Optional<TunnelReport> fromB = Optional.ofNullable(nodes.get(b).tunnels.get(a));
        boolean leased = nodes.get(a).lease != null && nodes.get(b).lease != null;
        if (fromA.isEmpty() && fromB.isEmpty() && !leased) {
          continue;
        }
        boolean down = fromA.map(t -> t.state().equals("down")).orElse(false)
            || fromB.map(t -> t.state().equals("down")).orElse(false);
        boolean up = fromA.map(t -> t.state().equals("up")).orElse(false)
            || fromB.map(t -> t.state().equals("up")).orElse(false);
        links.add(new MeshLink(a, b, down ? "down" : up ? "up" : "unknown", fromA, fromB));
      }
    }
    return links;
  }

  /** Pod addresses in an IPv4 block: all but the network, the gateway and the broadcast address. */
  static long poolSize(String block) {
    int slash = block.indexOf('/');
    if (slash < 0 || block.contains(":")) {
      return 0;
    }
    int length = Integer.parseInt(block.substring(slash + 1));
    return Math.max(0, (1L << (32 - length)) - 3);
  }
}

package dev.ipseccni.firewall;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.PeerView;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.FirewallEvent;
import dev.ipseccni.bus.message.NodeBlockLease;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.MessageConsumer;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * The firewall of one node as a service: asserts the chains on start, re-asserts them on a
 * periodic check and whenever the ruleset monitor sees a change, follows the own block from lease
 * events, and answers whether the firewall is in place.
 *
 * <p>Stopping the service leaves the chains in place on purpose: charon and the pods outlive the
 * agent, and so must the plaintext guard. Removing them is {@link NodeFirewall#uninstall}.
 */
public final class FirewallService extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(FirewallService.class.getName());

  private final FirewallSettings settings;
  private final EventPublisher events;
  private final List<MessageConsumer<?>> consumers = new ArrayList<>();
  private NodeFirewall firewall;
  /** The one view of block leases; the firewall reads only this node's own lease from it (never expired by it). */
  private final PeerView peers;
  private PeerView.Follower peerFollower;
  private RulesetMonitor monitor;
  private long timer = -1;

  // Event-loop state.
  private Optional<Ipv4Cidr> ownBlock = Optional.empty();
  /**
   * The block the chains in place were asserted for by the previous agent, kept until this
   * node's lease is known: asserting the guard alone meanwhile would drop the pods'
   * traffic for the moment an agent restart takes.
   */
  private Optional<Ipv4Cidr> blockInPlace = Optional.empty();
  /** The block the chains were last asserted for; empty until the first successful assertion. */
  private Optional<Optional<Ipv4Cidr>> assertedFor = Optional.empty();
  private Optional<String> failure = Optional.of("firewall not asserted yet");
  /** What was last reported as left alone, so it is reported once, not at every check. */
  private List<String> leftAlone = List.of();
  private boolean checkRunning;
  private boolean checkAgain;
  private boolean stopped;

  /** Reads the names of the denied nodes (charon.deniedNodesFile); none by default. */
  private java.util.concurrent.Callable<java.util.Set<String>> deniedNodes = java.util.Set::of;
  /** The last underlay address each node's lease named: a denied node keeps its rules after its lease is gone. */
  private final java.util.Map<String, String> lastAddress = new java.util.concurrent.ConcurrentHashMap<>();
  /** Denied nodes whose address is not known, as last logged (worker state). */
  private java.util.Set<String> unknownDenied = java.util.Set.of();
  /** The denied nodes as last read, kept while the file cannot be read (worker state). */
  private java.util.Set<String> lastDenied = java.util.Set.of();

  /**
   * The denied nodes lose the control plane: their addresses are dropped on its ports both ways,
   * from the check after the file names them (the tunnel service cuts their tunnels meanwhile).
   */
  public void closeControlPlaneTo(java.util.concurrent.Callable<java.util.Set<String>> deniedNodes) {
    this.deniedNodes = deniedNodes;
  }

  public FirewallService(FirewallSettings settings, EventPublisher events) {
    this.settings = settings;
    this.events = events;
    // the own lease never expires in the view, so the grace does not matter here
    this.peers = new PeerView(settings.nodeName(), java.time.Duration.ofMinutes(10));
  }

  @Override
  public Future<?> start() {
    List<String> errors = settings.errors();
    if (!errors.isEmpty()) {
      return Future.failedFuture(new IllegalArgumentException("firewall settings: " + String.join("; ", errors)));
    }
    firewall = new NodeFirewall(settings);
    ownBlock = settings.configuredBlock();
    var bus = vertx.eventBus();
    consumers.add(bus.consumer(Addresses.nodeStatus(settings.nodeName(), Addresses.FIREWALL),
        m -> m.reply(status())));
    if (!settings.rulesetMonitor().isEmpty()) {
      monitor = new RulesetMonitor(settings.commandPrefix(), settings.rulesetMonitor(),
          () -> context.runOnContext(v -> requestCheck()));
      monitor.start();
    }
    timer = vertx.setPeriodic(settings.checkInterval().toMillis(), id -> {
      if (monitor != null && !monitor.isAlive()) {
        monitor.start();
      }
      requestCheck();
    });
    Future<Void> previous = ownBlock.isPresent() ? Future.succeededFuture()
        : vertx.executeBlocking(firewall::blockInPlace, true)
            .onSuccess(found -> {
              blockInPlace = found;
              found.ifPresent(b -> LOG.info(() -> "keeping the rules in place for block " + b
                  + " until this node's lease is known"));
            })
            .<Void>mapEmpty()
            .recover(err -> Future.succeededFuture());
    return previous.compose(x -> Future.all(consumers.stream().map(MessageConsumer::completion).toList()))
        .compose(ready -> {
          // the own lease as the one view of leases has it (ordered by epoch, resynced from the cluster)
          peerFollower = PeerView.follow(vertx, events, Addresses.FIREWALL, peers, PeerView.DEFAULT_RESYNC,
              change -> {
                peers.leases().forEach(lease -> lastAddress.put(lease.node(), lease.underlayAddress()));
                onOwnLease(peers.own());
              });
          return peerFollower.started();
        })
        .compose(ready -> check())
        .mapEmpty();
  }

  @Override
  public Future<?> stop() {
    stopped = true;
    vertx.cancelTimer(timer);
    if (monitor != null) {
      monitor.stop();
    }
    if (peerFollower != null) {
      peerFollower.close();
    }
    return Future.all(consumers.stream().map(MessageConsumer::unregister).toList());
  }

  /** Ready once the chains are asserted for a known own block and the last check succeeded. */
  ComponentStatus status() {
    if (failure.isPresent()) {
      return ComponentStatus.notReady(Addresses.FIREWALL, failure.get());
    }
    if (ownBlock.isEmpty()) {
      return ComponentStatus.notReady(Addresses.FIREWALL,
          "plaintext guard in place, but the own block is not known yet (no lease for node "
              + settings.nodeName() + ")");
    }
    if (!assertedFor.equals(Optional.of(ownBlock))) {
      return ComponentStatus.notReady(Addresses.FIREWALL, "the chains for block " + ownBlock.get()
          + " are not asserted yet");
    }
    return ComponentStatus.ready(Addresses.FIREWALL);
  }

  /** Peers' blocks need no rules of their own (the rules name the whole cluster CIDR): only the own lease counts. */
  private void onOwnLease(Optional<NodeBlockLease> own) {
    if (settings.configuredBlock().isPresent()) {
      return;
    }
    Optional<Ipv4Cidr> next = Optional.empty();
    if (own.isPresent()) {
      String leased = own.get().block();
      next = Ipv4Cidr.parse(leased);
      if (next.isEmpty() || !settings.cluster().contains(next.get())) {
        LOG.severe(() -> "own lease names block '" + leased + "', which is not inside the cluster CIDR "
            + settings.clusterCidr() + "; firewall left as it is");
        return;
      }
    }
    if (!next.equals(ownBlock)) {
      Optional<Ipv4Cidr> before = ownBlock;
      ownBlock = next;
      LOG.info(() -> "own block " + (own.isPresent() ? "is now " + own.get().block() : before.get() + " released"));
      requestCheck();
    }
  }

  private void requestCheck() {
    if (stopped) {
      return;
    }
    if (checkRunning) {
      checkAgain = true;
      return;
    }
    check();
  }

  /** One assertion on a worker; the outcome is applied on the event loop. Never fails. */
  private Future<Void> check() {
    checkRunning = true;
    Optional<Ipv4Cidr> block = ownBlock.or(() -> blockInPlace);
    return vertx.executeBlocking(() -> firewall.enforce(block, deniedAddresses()), true)
        .transform(result -> {
          checkRunning = false;
          if (result.succeeded()) {
            onEnforced(block, result.result());
          } else {
            onFailed(result.cause());
          }
          if (checkAgain && !stopped) {
            checkAgain = false;
            check();
          }
          return Future.<Void>succeededFuture();
        });
  }

  /** The denied nodes with a known address, by name; on a worker (reads the file). */
  private java.util.Map<String, String> deniedAddresses() {
    java.util.Map<String, String> out = new java.util.TreeMap<>();
    java.util.Set<String> unknown = new java.util.TreeSet<>();
    java.util.Set<String> names;
    try {
      names = deniedNodes.call();
      lastDenied = names;
    } catch (Exception e) {
      names = lastDenied;
      LOG.warning(() -> "cannot read the denied nodes, keeping " + lastDenied + ": " + e.getMessage());
    }
    for (String node : names) {
      String address = lastAddress.get(node);
      if (address == null || address.contains(":")) {
        unknown.add(node);
      } else if (!node.equals(settings.nodeName())) {
        out.put(node, address);
      }
    }
    if (!unknown.equals(unknownDenied)) {
      unknownDenied = unknown;
      if (!unknown.isEmpty()) {
        LOG.warning(() -> "denied nodes " + unknown + ": no IPv4 underlay address known (no lease seen),"
            + " so the control-plane ports are not closed to them by address");
      }
    }
    return out;
  }

  private void onEnforced(Optional<Ipv4Cidr> block, Enforcement enforcement) {
    boolean freshAssertion = failure.isPresent() || !assertedFor.equals(Optional.of(block));
    failure = Optional.empty();
    assertedFor = Optional.of(block);
    List<String> reported = new ArrayList<>(enforcement.repaired());
    if (!enforcement.notRepaired().equals(leftAlone)) {
      leftAlone = enforcement.notRepaired();
      leftAlone.forEach(item -> {
        LOG.warning(() -> "firewall: " + item);
        reported.add("not repaired: " + item);
      });
    }
    if (freshAssertion) {
      LOG.info(() -> "firewall asserted for block " + block.map(Ipv4Cidr::toString).orElse("(none yet)")
          + ": " + enforcement.chains());
      events.publish(Addresses.FIREWALL_ASSERTED, new FirewallEvent(enforcement.chains(), reported));
    } else if (!reported.isEmpty()) {
      events.publish(Addresses.FIREWALL_DRIFT, new FirewallEvent(enforcement.chains(), reported));
    }
  }

  private void onFailed(Throwable cause) {
    String message = cause.getMessage() == null ? cause.toString() : cause.getMessage();
    if (!failure.equals(Optional.of(message))) {
      LOG.severe(() -> "firewall cannot be asserted, node not ready: " + message);
    }
    failure = Optional.of(message);
  }
}

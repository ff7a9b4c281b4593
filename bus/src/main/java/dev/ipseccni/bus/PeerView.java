package dev.ipseccni.bus;

import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.LeaseSnapshot;
import dev.ipseccni.bus.message.LeaseSync;
import dev.ipseccni.bus.message.NodeBlockLease;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * What this node knows of the cluster's block leases: the one view the tunnel service, the
 * firewall and the node-bridge keeper hold, so they cannot disagree on who holds a block.
 * Events alone can be missed (a partition, a service started late), so the view corrects
 * itself by three rules:
 * <ul>
 *   <li>one lease per block, the highest epoch winning (a block that changed hands while a
 *       release was missed has its new holder only), and one lease per node (its latest);
 *   <li>a lease not renewed within the grace leaves by itself ({@code renewedAtMillis}), as
 *       the cluster would reclaim it; this node's own lease is exempt: its own IPAM says
 *       when it is lost;
 *   <li>a periodic snapshot of the cluster's lease map ({@link Addresses#LEASE_SNAPSHOT})
 *       adds what was missed and drops what the cluster no longer holds, as flannel's lease
 *       watcher resets from a snapshot when it falls behind.
 * </ul>
 * Epochs never go backwards: a released claim is remembered (block → epoch), and a late
 * event of it is ignored. Not thread-safe: use it from one event loop.
 */
public final class PeerView {
  /** What a change was: the set of holders or their blocks changed, or a lease was merely renewed. */
  public enum Change { SHAPE, RENEWAL, NONE }

  /** How often a follower resyncs when its service has no interval of its own. */
  public static final Duration DEFAULT_RESYNC = Duration.ofSeconds(30);

  private final String self;
  private final long graceMillis;
  private final LongSupplier clock;
  private final Map<String, NodeBlockLease> byBlock = new HashMap<>();
  private final Map<String, Long> releasedEpochs = new HashMap<>();

  /** @param grace IPAM's lease grace: a lease of another node not renewed for this long is gone */
  public PeerView(String self, Duration grace) {
    this(self, grace, System::currentTimeMillis);
  }

  /** @param clock wall-clock milliseconds, what {@code renewedAtMillis} is measured with */
  public PeerView(String self, Duration grace, LongSupplier clock) {
    this.self = self;
    this.graceMillis = grace.toMillis();
    this.clock = clock;
  }

  /** An acquired or renewed lease; one of another node already past its grace is no lease. */
  public Change offer(NodeBlockLease lease) {
    if (outlived(lease, clock.getAsLong())) {
      return Change.NONE;
    }
    Long released = releasedEpochs.get(lease.block());
    if (released != null && lease.epoch() <= released) {
      return Change.NONE; // a claim released already, seen late
    }
    NodeBlockLease current = byBlock.get(lease.block());
    if (current != null && (lease.epoch() < current.epoch()
        || (lease.epoch() == current.epoch() && lease.renewedAtMillis() < current.renewedAtMillis()))) {
      return Change.NONE; // older than what is known
    }
    for (NodeBlockLease other : List.copyOf(byBlock.values())) {
      if (other.node().equals(lease.node()) && !other.block().equals(lease.block())
          && other.renewedAtMillis() > lease.renewedAtMillis()) {
        return Change.NONE; // the node holds a newer lease elsewhere: this one is its past
      }
    }
    byBlock.put(lease.block(), lease);
    boolean shape = current == null || !sameShape(current, lease);
    for (Iterator<NodeBlockLease> it = byBlock.values().iterator(); it.hasNext(); ) {
      NodeBlockLease other = it.next();
      if (other.node().equals(lease.node()) && !other.block().equals(lease.block())) {
        it.remove(); // the node moved to another block
        shape = true;
      }
    }
    if (shape) {
      return Change.SHAPE;
    }
    return current.equals(lease) ? Change.NONE : Change.RENEWAL;
  }

  /** A released lease: gone from the view unless a newer claim of its block is held. */
  public Change release(NodeBlockLease lease) {
    releasedEpochs.merge(lease.block(), lease.epoch(), Math::max);
    NodeBlockLease current = byBlock.get(lease.block());
    if (current != null && current.epoch() <= lease.epoch()) {
      byBlock.remove(lease.block());
      return Change.SHAPE;
    }
    return Change.NONE;
  }

  /** Drops the leases of other nodes not renewed within the grace. */
  public Change expire() {
    long now = clock.getAsLong();
    return byBlock.values().removeIf(l -> outlived(l, now)) ? Change.SHAPE : Change.NONE;
  }

  private boolean outlived(NodeBlockLease lease, long now) {
    return !lease.node().equals(self) && now - lease.renewedAtMillis() > graceMillis;
  }

  /**
   * The cluster's leases as read at {@code takenAtMillis}: each is offered, and a lease of
   * another node the snapshot does not hold goes, unless it was renewed after the snapshot
   * was taken (an event newer than the snapshot).
   */
  public Change resync(Collection<NodeBlockLease> snapshot, long takenAtMillis) {
    Change change = Change.NONE;
    Set<String> held = new HashSet<>();
    for (NodeBlockLease lease : snapshot) {
      held.add(lease.block());
      change = stronger(change, offer(lease));
    }
    boolean removed = byBlock.values().removeIf(l -> !l.node().equals(self) && !held.contains(l.block())
        && l.renewedAtMillis() <= takenAtMillis);
    return removed ? Change.SHAPE : change;
  }

  /** This node's own lease, if it holds one. */
  public Optional<NodeBlockLease> own() {
    return byBlock.values().stream().filter(l -> l.node().equals(self)).findFirst();
  }

  /** Every lease in the view, this node's included, by node name: one per node and one per block. */
  public List<NodeBlockLease> leases() {
    List<NodeBlockLease> all = new ArrayList<>(byBlock.values());
    all.sort(Comparator.comparing(NodeBlockLease::node));
    return all;
  }

  /** The highest epoch released for the block, if a release of it was seen. */
  public Optional<Long> releasedEpoch(String block) {
    return Optional.ofNullable(releasedEpochs.get(block));
  }

  private static boolean sameShape(NodeBlockLease a, NodeBlockLease b) {
    return a.node().equals(b.node()) && a.underlayAddress().equals(b.underlayAddress()) && a.epoch() == b.epoch();
  }

  private static Change stronger(Change a, Change b) {
    return a.ordinal() <= b.ordinal() ? a : b;
  }

  /**
   * Keeps a view current on a Vert.x context: follows the lease events, asks every node to
   * announce its lease (once, at start), and every {@code resyncInterval} asks the cluster
   * for a snapshot of its lease map and then expires what outlived its grace. Calls
   * {@code onChange} (on the same context) with every change that is not {@link Change#NONE}.
   * Close it to stop.
   */
  public static Follower follow(Vertx vertx, EventPublisher events, String component, PeerView view,
                                Duration resyncInterval, Consumer<Change> onChange) {
    return new Follower(vertx, events, component, view, resyncInterval, onChange);
  }

  /** The subscriptions and the timer of {@link #follow}. */
  public static final class Follower {
    private final Vertx vertx;
    private final PeerView view;
    private final Consumer<Change> onChange;
    private final List<MessageConsumer<?>> consumers = new ArrayList<>();
    private final long timer;
    private final String component;
    private final Future<Void> started;
    private final Promise<Void> synced = Promise.promise();
    private long retryTimer = -1;
    private boolean closed;

    private Follower(Vertx vertx, EventPublisher events, String component, PeerView view, Duration interval,
                     Consumer<Change> onChange) {
      this.vertx = vertx;
      this.view = view;
      this.onChange = onChange;
      this.component = component;
      var bus = vertx.eventBus();
      consumers.add(bus.<Event>consumer(Addresses.LEASE_ACQUIRED, m -> lease(m, view::offer)));
      consumers.add(bus.<Event>consumer(Addresses.LEASE_RENEWED, m -> lease(m, view::offer)));
      consumers.add(bus.<Event>consumer(Addresses.LEASE_RELEASED, m -> lease(m, view::release)));
      started = Future.all(consumers.stream().map(MessageConsumer::completion).toList())
          .onSuccess(ok -> {
            events.publish(Addresses.LEASE_SYNC, new LeaseSync(component));
            resync();
          })
          .mapEmpty();
      // the snapshot first: a lease the cluster renewed while this node heard nothing (it was
      // paused, or its events were late) is refreshed before it could be taken for expired
      timer = vertx.setPeriodic(interval.toMillis(), id -> resync().onComplete(done -> report(view.expire())));
    }

    /** Completes once the lease events are subscribed to. */
    public Future<Void> started() {
      return started;
    }

    /**
     * Completes once the view has been compared with a snapshot of the cluster's lease map,
     * or once it is known that no node serves one (no IPAM in the cluster: events are all
     * there is). Until then the view may lack peers that hold their leases: right after a
     * start it has only what events brought, often just this node's own lease, so it says
     * who is there but not who is gone.
     */
    public Future<Void> synced() {
      return synced.future();
    }

    public boolean isSynced() {
      return synced.future().isComplete();
    }

    private void lease(Message<Event> m, java.util.function.Function<NodeBlockLease, Change> apply) {
      if (m.body().payload() instanceof LeaseEvent le) {
        report(apply.apply(le.lease()));
      }
    }

    /**
     * Fails when no IPAM answers: events and expiry keep the view meanwhile. Until the first
     * snapshot is in, a failed one is asked for again after a second, not after the interval.
     */
    private Future<?> resync() {
      return vertx.eventBus().<LeaseSnapshot>request(Addresses.LEASE_SNAPSHOT, component,
              new DeliveryOptions().setSendTimeout(5_000))
          .onSuccess(reply -> {
            report(view.resync(reply.body().leases(), reply.body().takenAtMillis()));
            synced.tryComplete();
          })
          .onFailure(err -> {
            if (err instanceof ReplyException re && re.failureType() == ReplyFailure.NO_HANDLERS) {
              synced.tryComplete();
            } else if (!isSynced() && !closed && retryTimer < 0) {
              retryTimer = vertx.setTimer(FIRST_SYNC_RETRY_MILLIS, id -> {
                retryTimer = -1;
                if (!closed && !isSynced()) {
                  resync();
                }
              });
            }
          });
    }

    private static final long FIRST_SYNC_RETRY_MILLIS = 1_000;

    private void report(Change change) {
      if (change != Change.NONE) {
        onChange.accept(change);
      }
    }

    public Future<?> close() {
      closed = true;
      vertx.cancelTimer(timer);
      if (retryTimer >= 0) {
        vertx.cancelTimer(retryTimer);
      }
      return Future.all(consumers.stream().map(MessageConsumer::unregister).toList());
    }
  }
}

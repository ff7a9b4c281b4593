package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import com.hazelcast.query.Predicate;
import com.hazelcast.splitbrainprotection.SplitBrainProtectionException;
import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.JsonRecordCodec;
import dev.ipseccni.bus.message.AddressEvent;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.CheckRequest;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.Failures;
import dev.ipseccni.bus.message.GcRequest;
import dev.ipseccni.bus.message.GcResult;
import dev.ipseccni.bus.message.LeaseSnapshot;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.bus.message.ReleaseRequest;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Metrics;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The IPAM service of one node. On start it replays the allocation journal, then claims
 * (or takes back) its block lease, retrying until a majority of the cluster is present;
 * until both are done ADD fails with "try again later". It renews the lease, removes
 * leases that expired, answers allocate / release / check / gc for this node's pods, and
 * mirrors allocations to the cluster off the ADD path, in batches.
 *
 * <p>Deploy with {@code vertx.deployVerticle(new IpamService(settings, events, hazelcast))};
 * the Hazelcast config must have been customised with {@link BlockLeases#configure}.
 */
public final class IpamService extends VerticleBase {
  private static final System.Logger LOG = System.getLogger(IpamService.class.getName());
  /** How long stop() waits for the address mirror's last batch (an agent on SIGTERM has ~30 s). */
  private static final Duration STOP_FLUSH_LIMIT = Duration.ofSeconds(5);

  private final IpamSettings settings;
  private final EventPublisher events;
  private final HazelcastInstance hazelcast;
  private final String node;
  private BlockLeases leases;
  private IMap<String, String> addressMirror;
  private WorkerExecutor mirrorQueue;
  private final List<MessageConsumer<?>> consumers = new ArrayList<>();
  /** Mirror operations not written yet, by bare address (event loop only, as the flush state below). */
  private final Map<String, MirrorOp> pendingMirror = new HashMap<>();
  private boolean resyncPending;
  /** Resyncs asked for so far: a failed batch taken before the latest one is not retried. */
  private long mirrorGeneration;
  private long mirrorTimer = -1;
  private boolean flushing;
  private Future<Void> mirrorFlight = Future.succeededFuture();
  /** The last failure of a batch, until a batch is written again (to warn once, not per attempt). */
  private String mirrorFailure;
  private final AtomicLong mirrorFlushes = new AtomicLong();

  private volatile NodeAllocations allocations;
  private volatile NodeBlockLease lease;
  /** Micrometer's name; Prometheus shows it as ipsec_cni_ipam_orphaned. */
  static final String ORPHANED_GAUGE = "ipsec.cni.ipam.orphaned";
  private Gauge orphanGauge;
  private volatile String notReadyReason = "journal not replayed yet";
  private volatile boolean stopping;
  private boolean claiming;
  private boolean renewing;
  private long renewTimer = -1;

  public IpamService(IpamSettings settings, EventPublisher events, HazelcastInstance hazelcast) {
    this.settings = settings;
    this.events = events;
    this.hazelcast = hazelcast;
    this.node = settings.nodeName();
  }

  @Override
  public Future<?> start() {
    List<String> errors = settings.validate();
    if (!errors.isEmpty()) {
      return Future.failedFuture(new IllegalArgumentException("IPAM settings: " + String.join("; ", errors)));
    }
    NodeBlocks blocks = settings.blocks();
    leases = new BlockLeases(hazelcast, blocks, settings.gracePeriod());
    addressMirror = hazelcast.getMap(BlockLeases.ADDRESS_MAP);
    mirrorQueue = vertx.createSharedWorkerExecutor("ipam-mirror-" + node, 1);
    return vertx.executeBlocking(() -> {
          Optional<String> conflict = leases.networkConflict();
          if (conflict.isPresent()) {
            throw new IllegalStateException(conflict.get());
          }
          NodeAllocations opened = NodeAllocations.open(node, blocks, settings.journalDir(),
              settings.compactAfterRecords());
          LOG.log(Level.INFO, "node {0}: journal {1} replayed, {2} allocations in {3} ({4} bad lines skipped)",
              node, settings.journalDir(), opened.all().size(), opened.block().map(Object::toString).orElse("no block"),
              opened.skippedLines());
          return opened;
        }, false)
        .compose(opened -> {
          allocations = opened;
          orphanGauge = Gauge.builder(ORPHANED_GAUGE, opened, NodeAllocations::orphanCount)
              .description("pods whose address is in a block this node no longer holds (CHECK fails for them)")
              .tag("node", node).register(Metrics.globalRegistry);
          notReadyReason = "no block lease yet";
          return registerConsumers();
        })
        .onSuccess(v -> claim());
  }

  @Override
  public Future<?> stop() {
    stopping = true;
    if (orphanGauge != null) {
      Metrics.globalRegistry.remove(orphanGauge);
    }
    if (renewTimer >= 0) {
      vertx.cancelTimer(renewTimer);
    }
    NodeAllocations held = allocations;
    return Future.all(consumers.stream().map(MessageConsumer::unregister).toList())
        .compose(v -> held == null ? Future.succeededFuture() : vertx.executeBlocking(() -> {
          held.close();
          return null;
        }, false))
        .eventually(this::drainMirror)
        .eventually(() -> mirrorQueue.close());
  }

  /** For tests in this package: the node's allocations, once the journal is open (null before). */
  NodeAllocations allocations() {
    return allocations;
  }

  /** A snapshot of this node's lease and allocations (for the HTTP API). Safe from any thread. */
  public IpamView view() {
    NodeAllocations a = allocations;
    String reason = readiness().orElse("");
    return new IpamView(node, reason.isEmpty(), reason, Optional.ofNullable(lease),
        a == null ? List.of() : a.all());
  }

  /** Every block lease in the cluster, by block (read off the event loop). */
  public Future<Map<String, NodeBlockLease>> clusterLeases() {
    return vertx.executeBlocking(() -> leases.all(), false);
  }

  /** Why ADD cannot succeed now, or empty when it can. */
  private Optional<String> readiness() {
    if (allocations != null && lease != null) {
      return Optional.empty();
    }
    return Optional.of("node " + node + ": " + notReadyReason);
  }

  private Future<Void> registerConsumers() {
    EventBus bus = vertx.eventBus();
    consumers.add(bus.<AllocateRequest>consumer(Addresses.ipamAllocate(node), this::allocate));
    consumers.add(bus.<ReleaseRequest>consumer(Addresses.ipamRelease(node), this::release));
    consumers.add(bus.<CheckRequest>consumer(Addresses.ipamCheck(node), this::check));
    consumers.add(bus.<GcRequest>consumer(Addresses.ipamGc(node), this::gc));
    consumers.add(bus.<Object>consumer(Addresses.nodeStatus(node, Addresses.IPAM), this::status));
    consumers.add(bus.<Event>consumer(Addresses.LEASE_SYNC, m -> announceLease()));
    consumers.add(bus.<Object>consumer(Addresses.LEASE_SNAPSHOT, this::snapshot));
    return Future.all(consumers.stream().map(MessageConsumer::completion).toList()).mapEmpty();
  }

  // ---- requests ----

  /** The lease map as read now, for a {@link dev.ipseccni.bus.PeerView} anywhere in the cluster. */
  private void snapshot(Message<Object> message) {
    vertx.executeBlocking(() -> {
      // the time before the read: a lease renewed during it is newer than the snapshot
      long takenAt = System.currentTimeMillis();
      return new LeaseSnapshot(List.copyOf(leases.all().values()), takenAt);
    }, false).onComplete(read -> {
      if (read.succeeded()) {
        message.reply(read.result());
      } else {
        message.fail(Failures.TRY_AGAIN_LATER, "node " + node + ": cannot read the lease map: " + read.cause());
      }
    });
  }

  private void allocate(Message<AllocateRequest> message) {
    AllocateRequest request = message.body();
    Optional<AllocationKey> key = key(message, request == null ? null
        : new AllocationKey(nz(request.network()), nz(request.containerId()), nz(request.ifName())));
    if (key.isEmpty()) {
      return;
    }
    Optional<String> notReady = readiness();
    if (notReady.isPresent()) {
      message.fail(Failures.TRY_AGAIN_LATER, notReady.get());
      return;
    }
    NodeAllocations a = allocations;
    String requested = request.requestedAddress();
    vertx.executeBlocking(() -> allocate(a, key.get(), requested), false).onComplete(result -> {
      if (result.succeeded()) {
        Allocation allocation = result.result().allocation();
        message.reply(allocation);
        if (result.result().isNew()) {
          events.publish(Addresses.ADDRESS_ALLOCATED, addressEvent(allocation));
          mirrorAllocated(allocation);
        }
      } else {
        Throwable e = result.cause();
        if (e instanceof PoolExhaustedException) {
          message.fail(Failures.POOL_EXHAUSTED, e.getMessage());
        } else if (e instanceof RequestedAddressException) {
          message.fail(Failures.REQUESTED_ADDRESS_UNAVAILABLE, e.getMessage());
        } else if (e instanceof IllegalArgumentException) {
          message.fail(Failures.INVALID_REQUEST, "node " + node + ": requested address '" + requested
              + "' for " + key.get() + " is not an IP address: " + e.getMessage());
        } else if (e instanceof NodeAllocations.NoBlockException) {
          message.fail(Failures.TRY_AGAIN_LATER, e.getMessage());
        } else {
          LOG.log(Level.ERROR, "node " + node + ": allocation for " + key.get() + " not persisted", e);
          message.fail(Failures.JOURNAL_FAILED, "node " + node + ": the allocation for " + key.get()
              + " could not be written to the journal in " + settings.journalDir() + ": " + e.getMessage());
        }
      }
    });
  }

  /** Blocking. A requested address outside our block is refused with where it does belong, when that is known. */
  private NodeAllocations.Allocated allocate(NodeAllocations a, AllocationKey key, String requested)
      throws Exception {
    try {
      return a.allocate(key, requested);
    } catch (RequestedAddressException e) {
      if (e.reason() != RequestedAddressException.Reason.OUTSIDE_BLOCK) {
        throw e;
      }
      throw new RequestedAddressException(e.reason(), e.address(), e.getMessage() + whereItBelongs(e.address()));
    }
  }

  /** "; it is in block B, held by node N" for an address of the cluster CIDR (a cluster map read: error path only). */
  private String whereItBelongs(String address) {
    NodeBlocks blocks = settings.blocks();
    try {
      long offset = blocks.clusterCidr().offsetOf(address);
      IpPrefix block = blocks.block(offset / blocks.blockSize());
      return leases.get(block.toString())
          .map(l -> "; it is in block " + block + ", held by node " + l.node() + " (start the pod there)")
          .orElse("; it is in block " + block + ", which no node holds");
    } catch (IllegalArgumentException e) {
      return "; it is not inside the cluster CIDR " + blocks.clusterCidr() + " at all";
    } catch (RuntimeException e) {
      LOG.log(Level.DEBUG, "node {0}: cannot tell whose block {1} is in: {2}", node, address, e.toString());
      return "";
    }
  }

  private void release(Message<ReleaseRequest> message) {
    ReleaseRequest request = message.body();
    Optional<AllocationKey> key = key(message, request == null ? null
        : new AllocationKey(nz(request.network()), nz(request.containerId()), nz(request.ifName())));
    if (key.isEmpty()) {
      return;
    }
    NodeAllocations a = allocations;
    if (a == null) {
      message.fail(Failures.TRY_AGAIN_LATER, "node " + node + ": " + notReadyReason);
      return;
    }
    vertx.executeBlocking(() -> a.release(key.get()), false).onComplete(result -> {
      if (result.succeeded()) {
        message.reply(result.result().orElse(null));
        result.result().ifPresent(this::released);
      } else {
        message.fail(Failures.JOURNAL_FAILED, "node " + node + ": the release of " + key.get()
            + " could not be written to the journal: " + result.cause().getMessage());
      }
    });
  }

  /** What CHECK found: the key's allocation, held (ours) or orphaned (of a block we lost). */
  private record Checked(Allocation allocation, boolean held) {}

  private void check(Message<CheckRequest> message) {
    CheckRequest request = message.body();
    Optional<AllocationKey> key = key(message, request == null ? null
        : new AllocationKey(nz(request.network()), nz(request.containerId()), nz(request.ifName())));
    if (key.isEmpty()) {
      return;
    }
    NodeAllocations a = allocations;
    if (a == null) {
      message.fail(Failures.TRY_AGAIN_LATER, "node " + node + ": " + notReadyReason);
      return;
    }
    vertx.executeBlocking(() -> a.check(key.get()).map(held -> new Checked(held, true))
        .or(() -> a.orphan(key.get()).map(orphan -> new Checked(orphan, false))), false).onComplete(result -> {
      if (result.succeeded() && result.result().isPresent() && result.result().get().held()) {
        message.reply(result.result().get().allocation());
      } else if (result.succeeded() && result.result().isPresent()) {
        Allocation o = result.result().get().allocation();
        message.fail(Failures.ADDRESS_NO_LONGER_OURS, "node " + node + ": the address " + o.address() + " of "
            + key.get() + " belongs to block " + o.block() + ", which this node no longer holds (it lost the block"
            + " after missing its lease renewals for longer than the grace period): the pod must be recreated");
      } else if (result.succeeded()) {
        message.fail(Failures.UNKNOWN_CONTAINER, "node " + node + ": no address is allocated to " + key.get());
      } else {
        message.fail(Failures.JOURNAL_FAILED, result.cause().getMessage());
      }
    });
  }

  private void gc(Message<GcRequest> message) {
    GcRequest request = message.body();
    if (request == null || request.network() == null || request.network().isBlank()) {
      message.fail(Failures.INVALID_REQUEST, "GC request without a network name");
      return;
    }
    NodeAllocations a = allocations;
    if (a == null) {
      message.fail(Failures.TRY_AGAIN_LATER, "node " + node + ": " + notReadyReason);
      return;
    }
    vertx.executeBlocking(() -> a.gc(request.network(), request.validAttachments()), false).onComplete(result -> {
      if (result.succeeded()) {
        message.reply(new GcResult(result.result()));
        result.result().forEach(this::released);
      } else {
        message.fail(Failures.JOURNAL_FAILED, "node " + node + ": GC could not be written to the journal: "
            + result.cause().getMessage());
      }
    });
  }

  private void status(Message<Object> message) {
    Optional<String> notReady = readiness();
    message.reply(notReady.map(r -> ComponentStatus.notReady(Addresses.IPAM, r))
        .orElse(ComponentStatus.ready(Addresses.IPAM)));
  }

  private Optional<AllocationKey> key(Message<?> message, AllocationKey key) {
    if (key == null || key.network().isBlank() || key.containerId().isBlank() || key.ifName().isBlank()) {
      message.fail(Failures.INVALID_REQUEST, "network, containerId and ifName must all be given, got " + key);
      return Optional.empty();
    }
    return Optional.of(key);
  }

  private static String nz(String s) {
    return s == null ? "" : s;
  }

  private void released(Allocation allocation) {
    events.publish(Addresses.ADDRESS_RELEASED, addressEvent(allocation));
    mirrorReleased(allocation);
  }

  private static AddressEvent addressEvent(Allocation a) {
    return new AddressEvent(a.network(), a.containerId(), a.ifName(), a.address());
  }

  // ---- the lease ----

  private void claim() {
    if (stopping || claiming || lease != null) {
      return;
    }
    claiming = true;
    List<IpPrefix> hints = new ArrayList<>();
    allocations.block().ifPresent(hints::add);
    settings.preferredBlock().map(IpPrefix::parse).ifPresent(hints::add);
    vertx.executeBlocking(() -> {
          NodeBlockLease claimed = leases.claim(node, settings.underlayAddress(), hints);
          return Map.entry(claimed, allocations.bindBlock(IpPrefix.parse(claimed.block())));
        }, false)
        .onComplete(result -> {
          claiming = false;
          if (stopping) {
            return;
          }
          if (result.succeeded()) {
            orphaned(result.result().getKey(), result.result().getValue());
            acquired(result.result().getKey());
          } else {
            String reason = claimFailure(result.cause());
            if (!reason.equals(notReadyReason)) {
              LOG.log(Level.WARNING, "node {0}: cannot claim a block yet: {1}", node, reason);
            }
            notReadyReason = reason;
            vertx.setTimer(settings.claimRetryInterval().toMillis(), id -> claim());
          }
        });
  }

  private String claimFailure(Throwable e) {
    if (e instanceof SplitBrainProtectionException) {
      return "waiting for a majority of the cluster (" + settings.majority() + " of " + settings.expectedMembers()
          + " expected members) before claiming a block; members now: " + hazelcast.getCluster().getMembers().size();
    }
    if (e instanceof BlockLeases.NoFreeBlockException || e instanceof BlockLeases.NetworkConflictException) {
      return e.getMessage();
    }
    return "block claim failed: " + e;
  }

  private void acquired(NodeBlockLease claimed) {
    lease = claimed;
    LOG.log(Level.INFO, "node {0}: holds block {1} (epoch {2})", node, claimed.block(), claimed.epoch());
    events.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(claimed));
    resyncMirror();
    if (renewTimer < 0) {
      renewTimer = vertx.setPeriodic(settings.renewInterval().toMillis(), id -> renew());
    }
  }

  /**
   * The pods of the block this node just lost keep their addresses, which another node may now
   * give out: said once, loudly, and per pod as an event; CHECK fails for each (code 103) until
   * its pod is deleted.
   */
  private void orphaned(NodeBlockLease claimed, List<Allocation> orphans) {
    if (orphans.isEmpty()) {
      return;
    }
    LOG.log(Level.ERROR, "node {0}: {1} pods keep addresses of block {2}, which this node no longer holds (now {3}):"
        + " their traffic is not routed; CNI CHECK fails for them (code 103) so the runtime recreates them",
        node, orphans.size(), orphans.get(0).block(), claimed.block());
    orphans.forEach(a -> events.publish(Addresses.ADDRESS_ORPHANED, addressEvent(a)));
  }

  /** A service somewhere has just started and needs every node's lease. */
  private void announceLease() {
    NodeBlockLease held = lease;
    if (held != null && !stopping) {
      events.publish(Addresses.LEASE_RENEWED, new LeaseEvent(held));
    }
  }

  private void renew() {
    NodeBlockLease held = lease;
    if (held == null || renewing || stopping) {
      return;
    }
    renewing = true;
    vertx.executeBlocking(() -> {
          NodeBlockLease current = leases.renew(held);
          List<NodeBlockLease> expired = current.node().equals(node) ? leases.releaseExpired() : List.of();
          return Map.entry(current, expired);
        }, false)
        .onComplete(result -> {
          renewing = false;
          if (stopping) {
            return;
          }
          if (result.failed()) {
            // Without a majority the lease cannot be renewed, but it is not lost either: it
            // expires only after the grace period, and the majority side respects that.
            LOG.log(Level.WARNING, "node {0}: lease renewal of {1} failed: {2}", node, held.block(),
                result.cause().toString());
            return;
          }
          NodeBlockLease current = result.result().getKey();
          result.result().getValue().forEach(expired -> {
            LOG.log(Level.INFO, "node {0}: lease of {1} on {2} expired and was removed", node, expired.node(),
                expired.block());
            events.publish(Addresses.LEASE_RELEASED, new LeaseEvent(expired));
          });
          if (current.node().equals(node)) {
            lease = current;
            events.publish(Addresses.LEASE_RENEWED, new LeaseEvent(current));
          } else {
            lease = null;
            notReadyReason = "block " + held.block() + " was taken over by node " + current.node()
                + " (epoch " + current.epoch() + ") after this node missed renewals for longer than the grace period";
            LOG.log(Level.ERROR, "node {0}: {1}", node, notReadyReason);
            events.publish(Addresses.LEASE_RELEASED, new LeaseEvent(held));
            claim();
          }
        });
  }

  // ---- the cluster mirror of allocations (inspection and duplicate detection) ----
  //
  // Allocations and releases are not written one by one: each is recorded under its bare
  // address (the last one for an address wins) and the lot is written settings.mirrorDelay()
  // later as one batch, so the mirror's cluster calls do not compete with the datapath
  // set-up of the pod that was just answered, and a burst of ADDs costs a few batches
  // instead of one put each. The pending operations and the flush state are touched on the
  // event loop only; a batch is written on mirrorQueue, one batch at a time.

  private void mirrorAllocated(Allocation allocation) {
    recordMirror(new MirrorOp(allocation, mirrorJson(allocation), true));
  }

  private void mirrorReleased(Allocation allocation) {
    recordMirror(new MirrorOp(allocation, mirrorJson(allocation), false));
  }

  private void recordMirror(MirrorOp op) {
    pendingMirror.put(bareAddress(op.allocation()), op);
    armMirrorTimer();
  }

  /**
   * After (re)claiming: the cluster's copy of this node's allocations becomes exactly the
   * journal's. What is pending now is in the journal too, so it is dropped here; a batch
   * already in flight is written before the resync, one that fails is not retried.
   */
  private void resyncMirror() {
    pendingMirror.clear();
    resyncPending = true;
    mirrorGeneration++;
    if (!flushing) {
      flushMirror();
    }
  }

  private void armMirrorTimer() {
    // stop() writes what is left itself; while a batch is in flight its end arms the timer
    if (mirrorTimer >= 0 || flushing || stopping) {
      return;
    }
    mirrorTimer = vertx.setTimer(settings.mirrorDelay().toMillis(), id -> {
      mirrorTimer = -1;
      flushMirror();
    });
  }

  /**
   * Writes what is pending as one batch, after the batch in flight if there is one. The
   * future fails when the batch could not be written; its operations are pending again then.
   */
  private Future<Void> flushMirror() {
    if (flushing) {
      return mirrorFlight;
    }
    if (pendingMirror.isEmpty() && !resyncPending) {
      return Future.succeededFuture();
    }
    MirrorBatch batch = new MirrorBatch(mirrorGeneration, resyncPending, new HashMap<>(pendingMirror));
    pendingMirror.clear();
    resyncPending = false;
    flushing = true;
    Promise<Void> written = Promise.promise();
    mirrorFlight = written.future();
    mirrorQueue.executeBlocking(() -> writeMirror(batch), true).onComplete(result -> {
      flushing = false;
      if (result.succeeded()) {
        mirrorWritten();
        if (resyncPending) {
          flushMirror(); // a resync asked for while this batch was in flight
        } else if (!pendingMirror.isEmpty()) {
          armMirrorTimer();
        }
        written.complete();
      } else {
        mirrorFailed(batch, result.cause());
        if (!pendingMirror.isEmpty() || resyncPending) {
          armMirrorTimer(); // the next attempt after the delay, never at once
        }
        written.fail(result.cause());
      }
    });
    return mirrorFlight;
  }

  /** Blocking, on mirrorQueue. */
  private Void writeMirror(MirrorBatch batch) {
    if (batch.resync()) {
      Map<String, String> ours = new HashMap<>();
      allocations.all().forEach(a -> ours.put(bareAddress(a), mirrorJson(a)));
      addressMirror.removeAll(new HeldByNode(node));
      addressMirror.putAll(ours);
    }
    Map<String, MirrorOp> puts = new HashMap<>();
    Map<String, MirrorOp> removes = new HashMap<>();
    batch.ops().forEach((address, op) -> (op.put() ? puts : removes).put(address, op));
    if (!puts.isEmpty()) {
      Map<String, String> previous = addressMirror.getAll(puts.keySet());
      previous.forEach((address, json) -> reportDuplicate(puts.get(address), json));
      Map<String, String> values = new HashMap<>();
      puts.forEach((address, op) -> values.put(address, op.json()));
      addressMirror.putAll(values);
    }
    // Only while it is still this allocation's entry: never another node's.
    removes.forEach((address, op) -> addressMirror.remove(address, op.json()));
    mirrorFlushes.incrementAndGet();
    return null;
  }

  private void reportDuplicate(MirrorOp put, String previous) {
    if (previous == null || previous.equals(put.json())) {
      return;
    }
    MirroredAllocation other = JsonRecordCodec.fromJson(previous.getBytes(StandardCharsets.UTF_8),
        MirroredAllocation.class);
    if (!other.node().equals(node)) {
      LOG.log(Level.ERROR, "duplicate pod address {0}: allocated on node {1} and on node {2}",
          put.allocation().address(), other.node(), node);
    }
  }

  private void mirrorWritten() {
    if (mirrorFailure != null) {
      LOG.log(Level.INFO, "node {0}: address mirror written again", node);
      mirrorFailure = null;
    }
  }

  /** The batch goes back under what was recorded since, unless a resync will rewrite it all anyway. */
  private void mirrorFailed(MirrorBatch batch, Throwable cause) {
    String reason = cause.toString();
    boolean superseded = batch.generation() != mirrorGeneration;
    // One warning per kind of failure, not one per attempt: a cluster away for an hour would
    // otherwise log twice a second.
    Level level = reason.equals(mirrorFailure) ? Level.DEBUG : Level.WARNING;
    mirrorFailure = reason;
    LOG.log(level, "node {0}: mirror of {1} addresses{2} failed ({3}): {4}", node, batch.ops().size(),
        batch.resync() ? " and resync" : "", superseded ? "a resync follows" : "kept for the next attempt", reason);
    if (superseded) {
      return;
    }
    batch.ops().forEach(pendingMirror::putIfAbsent);
    resyncPending |= batch.resync();
  }

  /** At stop: the batch in flight, then what is left, within {@link #STOP_FLUSH_LIMIT}. */
  private Future<Void> drainMirror() {
    if (mirrorTimer >= 0) {
      vertx.cancelTimer(mirrorTimer);
      mirrorTimer = -1;
    }
    Promise<Void> drained = Promise.promise();
    long limit = vertx.setTimer(STOP_FLUSH_LIMIT.toMillis(), id -> drained.tryFail(
        "not done within " + STOP_FLUSH_LIMIT.toMillis() + " ms"));
    flushEverything().onComplete(result -> {
      vertx.cancelTimer(limit);
      if (result.succeeded()) {
        drained.tryComplete();
      } else {
        drained.tryFail(result.cause());
      }
    });
    return drained.future().recover(e -> {
      LOG.log(Level.WARNING, "node {0}: {1} address mirror updates not written at stop: {2}", node,
          pendingMirror.size(), e.toString());
      return Future.succeededFuture();
    });
  }

  /** Until nothing is pending; ends at the first failure (whose operations are pending again then). */
  private Future<Void> flushEverything() {
    if (flushing) {
      return mirrorFlight.transform(ignored -> flushEverything());
    }
    if (pendingMirror.isEmpty() && !resyncPending) {
      return Future.succeededFuture();
    }
    return flushMirror().compose(v -> flushEverything());
  }

  /** Batches written to the cluster's address mirror so far (for tests). */
  long mirrorFlushes() {
    return mirrorFlushes.get();
  }

  /** What the mirror is to do for one address: put the JSON, or remove it while it is still this JSON. */
  private record MirrorOp(Allocation allocation, String json, boolean put) {}

  /** @param generation the resync count when the batch was taken */
  private record MirrorBatch(long generation, boolean resync, Map<String, MirrorOp> ops) {}

  private String mirrorJson(Allocation allocation) {
    return new String(JsonRecordCodec.toJson(new MirroredAllocation(node, allocation)), StandardCharsets.UTF_8);
  }

  private static String bareAddress(Allocation allocation) {
    return allocation.address().substring(0, allocation.address().indexOf('/'));
  }

  /** Mirror entries of one node (runs on the members holding them). */
  static final class HeldByNode implements Predicate<String, String> {
    private static final long serialVersionUID = 1L;
    private final String node;

    HeldByNode(String node) {
      this.node = node;
    }

    @Override
    public boolean apply(Map.Entry<String, String> entry) {
      try {
        return JsonRecordCodec.fromJson(entry.getValue().getBytes(StandardCharsets.UTF_8), MirroredAllocation.class)
            .node().equals(node);
      } catch (RuntimeException e) {
        return false;
      }
    }
  }

}

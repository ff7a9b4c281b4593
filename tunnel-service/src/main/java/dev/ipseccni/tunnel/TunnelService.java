package dev.ipseccni.tunnel;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.PeerView;
import dev.ipseccni.bus.message.CharonCheck;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.bus.message.SecretAnnouncement;
import dev.ipseccni.bus.message.TunnelEvent;
import dev.ipseccni.bus.message.TunnelFailure;
import dev.ipseccni.tunnel.identity.DeniedNodes;
import dev.ipseccni.tunnel.identity.IdentityException;
import dev.ipseccni.tunnel.identity.IkeAuth;
import dev.ipseccni.tunnel.identity.NodeIdentity;
import dev.ipseccni.tunnel.vici.ViciCommandException;
import dev.ipseccni.tunnel.vici.ViciException;
import dev.ipseccni.tunnel.vici.ViciMessage;
import dev.ipseccni.tunnel.vici.ViciSession;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Keeps charon's connections equal to the peer set: one tunnel per peer lease.
 *
 * <p>Leases arrive as lease.acquired / renewed / released events (our own among them).
 * A reconcile compares the desired tunnels with what charon has (get-conns, list-sas) and
 * loads, unloads and initiates; it runs on every lease change, on charon's up/down events
 * and on a timer. A dropped VICI socket (charon restarted) leads to a new session and a
 * reload of everything. Tunnels that come up or go down are published as tunnel.up /
 * tunnel.down. The service answers its node-status address: ready while charon answers.
 *
 * <p>On every new VICI session the service asks charon which algorithms it has and holds
 * them against the proposals it configures: a charon that cannot do them (a plugin not
 * loaded) makes the service not ready, with the missing algorithm and the remedy, and a
 * tunnel.charon event says so. charon's log stream tells why a peer tunnel does not come
 * up ({@link IkeFailureLog}); the last reason is kept per tunnel, published as
 * tunnel.failed and reported as degraded (the node keeps taking pods) until it is up.
 *
 * <p>Cluster secret rotation: the secret file is read again on every reconcile. Each node
 * announces the fingerprint of the secret it uses on tunnel.secret; a pair offers the key
 * both ends hold and, during a rotation, accepts the other one too ({@link SecretRing}).
 * When a pair's offered key changes, the side that starts the tunnel re-authenticates its
 * IKE SA (make-before-break where charon allows it), so every tunnel ends on the new key.
 *
 * <p>Certificates (the default, {@link IkeAuth.Certificates}): charon is given this node's
 * key and certificate and the cluster CA; each connection authenticates with them, and a
 * peer must present a CA certificate naming the node whose lease the tunnel serves. The
 * files are read again on every reconcile: a renewed certificate is loaded into charon, the
 * established IKE SAs keep running, and the renewed node re-authenticates each of its
 * tunnels (make-before-break), as the starting side does for a secret rotation. The denied-node file is read every reconcile
 * too: a node named there loses its tunnels (terminated and unloaded) and its block's route,
 * and with no connection accepting its identity charon refuses it.
 *
 * <p>Threads: all state lives on this verticle's event loop; every VICI call runs on a
 * one-thread worker, so calls are serialised and never block the loop.
 */
public final class TunnelService extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(TunnelService.class.getName());

  private final TunnelSettings settings;
  private final EventPublisher events;

  // event-loop state
  /** Who holds which block, as this node knows it: the one view shared with the firewall and the bridge keeper. */
  private final PeerView peers;
  private PeerView.Follower peerFollower;
  private Map<String, PeerTunnel> applied = new HashMap<>();
  private Map<String, PeerTunnel> upTunnels = new HashMap<>();
  private String charonProblem = "not yet contacted";
  private boolean reconciling;
  private boolean pending;
  private boolean pendingInitiateAll;
  private long timer = -1;
  /** While charon does not answer, the next reconcile comes this soon (doubling up to the interval), not a whole interval later. */
  private long retryDelayMillis = FIRST_RETRY_MILLIS;
  private long retryTimer = -1;
  private static final long FIRST_RETRY_MILLIS = 250;
  private boolean stopped;
  /** The secret ids the peers announced, by node; the one this node announced last. */
  private final Map<String, String> peerSecretIds = new HashMap<>();
  private String announcedSecretId;
  /** What charon lacks for the proposals (null when it has all, or before it was asked). */
  private String capabilityProblem;
  /** The last failure charon reported for each tunnel that is not up, by connection name. */
  private final Map<String, KeptFailure> failures = new TreeMap<>();
  /** A failure that lasts is published again this often, so late observers see it and its time stays fresh. */
  private static final long FAILURE_REPUBLISH_NANOS = Duration.ofSeconds(60).toNanos();

  private record KeptFailure(TunnelFailure failure, long publishedNanos) {}

  /** When each applied connection was loaded (into this charon session), for {@link #settling}. */
  private final Map<String, Long> loadedNanos = new HashMap<>();

  // worker state
  private WorkerExecutor worker;
  private TunnelRenderer renderer;
  private List<ProposalAlgorithms.Proposal> ikeProposals;
  private List<ProposalAlgorithms.Proposal> espProposals;
  /** charon's capability verdict for this session, and its check until it is published. */
  private CharonAlgorithms.Verdict verdict;
  private CharonCheck unannouncedCheck;
  private SecretRing secrets;
  /** This node's checked certificate identity (certificate mode), and what charon was given of it. */
  private NodeIdentity identity;
  private String loadedIdentity;
  private String loadedPrivateKeyId;
  /** The last reason the identity files on disk were not usable, so it is logged once. */
  private String lastIdentityProblem;
  /** The nodes the denied-node file names, as last read. */
  private Set<String> denied = Set.of();
  private ViciSession session;
  /** What the rendered file was last written from: the tunnels and each pair's keys (as ids). */
  private Map<String, PeerTunnel> lastRenderedTunnels = Map.of();
  private Map<String, String> lastRenderedKeys = Map.of();
  /** What each loaded connection's keys are in charon ({@link PairKeys#describe()}). */
  private final Map<String, String> loadedKeys = new HashMap<>();
  /** Connections to re-authenticate because their offered key changed. */
  private final Set<String> reauthPending = new HashSet<>();
  /** Peers already warned about for announcing a secret this node does not have, with that id. */
  private final Map<String, String> warnedSecretIds = new HashMap<>();

  /** The IPAM default: a peer's lease not renewed for this long leaves the view by itself. */
  public static final Duration DEFAULT_LEASE_GRACE = Duration.ofMinutes(10);

  public TunnelService(TunnelSettings settings, EventPublisher events) {
    this(settings, events, DEFAULT_LEASE_GRACE);
  }

  private ControlPlaneTunnels controlPlane;

  /** The control plane's connections are asserted every reconcile too (a restarted charon has none). */
  public void keepControlPlane(ControlPlaneTunnels controlPlane) {
    this.controlPlane = controlPlane;
  }

  /** The gateway address of a block, when this node's bridge must carry it before tunnels load (null: no bridge here). */
  private java.util.function.UnaryOperator<String> gatewayOf;
  private java.util.function.Predicate<String> isLocalAddress = TunnelService::isLocalAddress;
  /** The own block whose gateway was seen on this node (worker state). */
  private String gatewaySeenFor;
  private boolean gatewayWaitLogged;
  private long gatewayTimer = -1;
  /** How often a reconcile looks again while the gateway is not on the node yet. */
  static final long GATEWAY_POLL_MILLIS = 250;

  /**
   * Peer connections are loaded only once this node carries its block's gateway address (on the
   * bridge). charon takes the source address of a connection's route (table 220) from a local
   * address inside the local traffic selector, and only when it installs a policy: a trap policy
   * at load, an SA's policies when one is established. With no such address it leaves the route
   * out without a word and does not come back to it when the address appears, so the node's own
   * traffic to that peer's pods leaves with the underlay address as source, outside every policy,
   * and the plaintext guard drops it.
   *
   * @param gatewayOf the gateway address of a block
   * @param isLocalAddress whether an address is this node's (tests: a node in a namespace)
   */
  public void loadTunnelsAfterGateway(java.util.function.UnaryOperator<String> gatewayOf,
                                      java.util.function.Predicate<String> isLocalAddress) {
    this.gatewayOf = gatewayOf;
    this.isLocalAddress = isLocalAddress;
  }

  /** {@link #loadTunnelsAfterGateway(java.util.function.UnaryOperator, java.util.function.Predicate)} for this JVM's node. */
  public void loadTunnelsAfterGateway(java.util.function.UnaryOperator<String> gatewayOf) {
    loadTunnelsAfterGateway(gatewayOf, TunnelService::isLocalAddress);
  }

  static boolean isLocalAddress(String address) {
    try {
      return java.net.NetworkInterface.getByInetAddress(java.net.InetAddress.getByName(address)) != null;
    } catch (IOException e) {
      return false;
    }
  }

  /** @param leaseGrace IPAM's lease grace period: a peer not renewed for this long is no peer any more */
  public TunnelService(TunnelSettings settings, EventPublisher events, Duration leaseGrace) {
    this.settings = settings;
    this.events = events;
    this.peers = new PeerView(settings.nodeName(), leaseGrace);
  }

  @Override
  public Future<?> start() {
    worker = vertx.createSharedWorkerExecutor("tunnel-vici-" + settings.nodeName(), 1);
    return worker.executeBlocking(this::loadCredentials)
        .compose(secret -> {
          ikeProposals = ProposalAlgorithms.ike(settings.proposals().ike());
          espProposals = ProposalAlgorithms.esp(settings.proposals().esp());
          renderer = new TunnelRenderer(settings);
          if (secret != null) {
            // Two reconcile intervals: time enough for every peer to hear that this node has the new secret.
            secrets = new SecretRing(settings.secretFile(), settings.secretGrace(),
                settings.reconcileInterval().multipliedBy(2), secret);
            announcedSecretId = secret.id();
          }
          List<Future<?>> registered = new ArrayList<>();
          // events, expiry and a snapshot of the cluster's lease map every reconcile interval
          peerFollower = PeerView.follow(vertx, events, Addresses.TUNNEL, peers, settings.reconcileInterval(),
              change -> {
                if (change == PeerView.Change.SHAPE) {
                  requestReconcile(false);
                }
              });
          registered.add(peerFollower.started());
          // the connections held back from unloading until then are weighed at once
          peerFollower.synced().onSuccess(v -> requestReconcile(false));
          registered.add(vertx.eventBus().<Event>consumer(Addresses.TUNNEL_SECRET, m -> onSecret(m.body()))
              .completion());
          MessageConsumer<Object> status = vertx.eventBus()
              .consumer(Addresses.nodeStatus(settings.nodeName(), Addresses.TUNNEL), this::onStatus);
          registered.add(status.completion());
          return Future.all(registered);
        })
        .andThen(ok -> {
          if (ok.succeeded()) {
            timer = vertx.setPeriodic(settings.reconcileInterval().toMillis(), id -> requestReconcile(true));
            if (settings.psk()) {
              events.publish(Addresses.TUNNEL_SECRET, new SecretAnnouncement(announcedSecretId, true));
            }
            requestReconcile(false);
          }
        });
  }

  /**
   * The cluster secret (pre-shared keys), or null after checking this node's certificate,
   * key and CA (certificates): a start with unusable files fails with the reason.
   */
  private ClusterSecret loadCredentials() throws IOException, IdentityException {
    if (settings.auth() instanceof IkeAuth.Certificates files) {
      identity = NodeIdentity.load(files, settings.nodeName(), settings.underlayAddress(), java.time.Instant.now());
      if (files.deniedNodes().isPresent()) {
        denied = DeniedNodes.read(files.deniedNodes().get());
      }
      LOG.info(() -> "IKE identity " + settings.nodeName() + ": certificate " + identity);
      return null;
    }
    return ClusterSecret.load(settings.secretFile());
  }

  @Override
  public Future<?> stop() {
    stopped = true;
    if (timer >= 0) {
      vertx.cancelTimer(timer);
    }
    if (retryTimer >= 0) {
      vertx.cancelTimer(retryTimer);
    }
    if (gatewayTimer >= 0) {
      vertx.cancelTimer(gatewayTimer);
    }
    if (peerFollower != null) {
      peerFollower.close();
    }
    // charon keeps its tunnels without us: stopping the agent must not cut pod traffic.
    return worker.executeBlocking(() -> {
      if (session != null) {
        session.close();
      }
      return null;
    }).eventually(() -> worker.close());
  }

  private void onSecret(Event event) {
    if (!settings.psk() || !(event.payload() instanceof SecretAnnouncement announced)
        || event.node().equals(settings.nodeName())) {
      return;
    }
    if (announced.answerWanted()) {
      events.publish(Addresses.TUNNEL_SECRET, new SecretAnnouncement(announcedSecretId, false));
    }
    String before = peerSecretIds.put(event.node(), announced.secretId());
    if (!announced.secretId().equals(before)) {
      requestReconcile(false);
    }
  }

  private void onStatus(Message<Object> request) {
    if (charonProblem != null) {
      request.reply(ComponentStatus.notReady(Addresses.TUNNEL, "charon does not answer on " + settings.viciSocket()
          + ": " + charonProblem));
    } else if (capabilityProblem != null) {
      request.reply(ComponentStatus.notReady(Addresses.TUNNEL, capabilityProblem));
    } else {
      request.reply(ComponentStatus.degraded(Addresses.TUNNEL, failures.values().stream()
          .map(k -> describe(k.failure())).toList()));
    }
  }

  private static String describe(TunnelFailure f) {
    return "tunnel to " + f.peer() + " not up: " + f.reason() + " (seen " + java.time.Instant.ofEpochMilli(f.seenMillis())
        + "; charon: " + f.detail() + ")";
  }

  /** The last failure kept for each tunnel that is not up, by connection name (for tests). */
  public Map<String, TunnelFailure> failures() {
    Map<String, TunnelFailure> out = new TreeMap<>();
    failures.forEach((name, k) -> out.put(name, k.failure()));
    return out;
  }

  /** A failure line from charon's log, on the event loop: kept for its tunnel if that tunnel is ours and not up. */
  private void onIkeFailure(IkeFailureLog.IkeFailure f, long seenMillis) {
    Optional<PeerTunnel> tunnel = !f.connection().isEmpty() ? Optional.ofNullable(applied.get(f.connection()))
        : applied.values().stream().filter(t -> t.peerAddress().equals(f.peerAddress())).findFirst();
    if (tunnel.isEmpty() || upTunnels.containsKey(tunnel.get().connName())) {
      // not ours, or a second SA failing beside one that is up (a duplicate initiate, a rekey): not a tunnel down
      return;
    }
    PeerTunnel t = tunnel.get();
    long now = System.nanoTime();
    if (settling(t.connName(), now)) {
      LOG.fine(() -> "tunnel to " + t.peerNode() + " just loaded, not counted yet: " + f.reason() + " (" + f.line() + ")");
      return;
    }
    TunnelFailure failure = new TunnelFailure(t.peerNode(), t.peerBlock(), f.reason(), f.line(), seenMillis);
    KeptFailure before = failures.get(t.connName());
    boolean publish = before == null || !before.failure().reason().equals(f.reason())
        || now - before.publishedNanos() >= FAILURE_REPUBLISH_NANOS;
    failures.put(t.connName(), new KeptFailure(failure, publish ? now : before.publishedNanos()));
    if (publish) {
      LOG.warning(() -> describe(failure));
      events.publish(Addresses.TUNNEL_FAILED, failure);
    }
  }

  /**
   * Whether the connection was loaded less than two reconcile intervals ago. A peer refuses
   * the first exchanges until it has loaded its side ("no proposal chosen" while it has no
   * connection for us): every node join or charon restart did that once. A failure that
   * lasts is seen again at the next initiation.
   */
  private boolean settling(String connName, long now) {
    Long loaded = loadedNanos.get(connName);
    return loaded == null || now - loaded < settings.reconcileInterval().multipliedBy(2).toNanos();
  }

  /** Tunnels currently up, by connection name (for the agent's state page and for tests). */
  public Map<String, PeerTunnel> upTunnels() {
    return Map.copyOf(upTunnels);
  }

  /**
   * Runs a reconcile now, or once more after the running one.
   *
   * @param initiateAll initiate every missing tunnel, also those the peer is meant to start
   *     (timer ticks and tunnel-down events); otherwise only those this side initiates
   */
  private void requestReconcile(boolean initiateAll) {
    if (stopped) {
      return;
    }
    if (reconciling) {
      pending = true;
      pendingInitiateAll |= initiateAll;
      return;
    }
    reconciling = true;
    Optional<NodeBlockLease> own = peers.own();
    List<NodeBlockLease> all = peers.leases();
    Map<String, PeerTunnel> appliedNow = Map.copyOf(applied);
    Map<String, String> peerIds = Map.copyOf(peerSecretIds);
    boolean peersKnown = peerFollower != null && peerFollower.isSynced();
    worker.executeBlocking(() -> reconcileBlocking(own, all, appliedNow, peerIds, initiateAll, peersKnown))
        .onComplete(done -> {
          reconciling = false;
          io.micrometer.core.instrument.Metrics.counter(RECONCILE_RUNS, "outcome", done.succeeded() ? "ok" : "failed")
              .increment();
          if (done.succeeded()) {
            retryDelayMillis = FIRST_RETRY_MILLIS;
            apply(done.result());
          } else {
            failed(done.cause());
            retrySoon();
          }
          if (pending) {
            boolean again = pendingInitiateAll;
            pending = false;
            pendingInitiateAll = false;
            requestReconcile(again);
          }
        });
  }

  /**
   * Spacing of the initiations of one connection while it stays down: a peer that refuses
   * (no config loaded yet, a wrong key) answers at once, and every refusal is a down event,
   * so without it charon was asked to initiate hundreds of times a minute. It doubles from
   * one second to the reconcile interval and is forgotten once the tunnel is up.
   */
  private static final class Backoff {
    private final long maxNanos;
    private long delayNanos;
    private long notBefore = Long.MIN_VALUE;

    Backoff(Duration min, Duration max) {
      this.delayNanos = min.toNanos();
      this.maxNanos = Math.max(min.toNanos(), max.toNanos());
    }

    /** True when an initiation may go out now; then the next one waits twice as long. */
    boolean due(long now) {
      if (notBefore != Long.MIN_VALUE && now - notBefore < 0) {
        return false;
      }
      notBefore = now + delayNanos;
      delayNanos = Math.min(delayNanos * 2, maxNanos);
      return true;
    }
  }

  private static final Duration MIN_INITIATE_BACKOFF = Duration.ofSeconds(1);
  /** Touched only by the one-thread VICI worker, like the session. */
  private final Map<String, Backoff> initiateBackoff = new HashMap<>();

  /**
   * What a reconcile found and did; {@code secretId} is the secret in use after it;
   * {@code awaitingGateway}: nothing loaded because the bridge lacks the block's gateway yet.
   */
  private record Outcome(Map<String, PeerTunnel> desired, Map<String, PeerTunnel> applied,
                         Map<String, PeerTunnel> up, String secretId, CharonAlgorithms.Verdict verdict,
                         Optional<CharonCheck> checked, boolean awaitingGateway) {}

  /** Counter of reconcile runs, by outcome, in Micrometer's global registry (the agent's /metrics). */
  public static final String RECONCILE_RUNS = "ipsec.cni.tunnel.reconcile.runs";

  /**
   * @param peersKnown whether the peer view has been synced with the cluster's lease map; until
   *     then a connection in charon that no known lease wants is kept, not unloaded: after an
   *     agent restart the view first holds only what events brought (often just the own
   *     lease), and unloading then would cut every tunnel the old agent left up
   */
  private Outcome reconcileBlocking(Optional<NodeBlockLease> own, List<NodeBlockLease> all,
                                    Map<String, PeerTunnel> appliedBefore, Map<String, String> peerIds,
                                    boolean initiateAll, boolean peersKnown) throws IOException {
    boolean fresh = ensureSession();
    if (fresh) {
      loadedKeys.clear();
      loadedIdentity = null;
      loadedPrivateKeyId = null;
    }
    long now = System.nanoTime();
    Map<String, PeerTunnel> appliedNow = new HashMap<>(fresh ? Map.of() : appliedBefore);
    boolean renewed = false;
    if (settings.psk()) {
      secrets.refresh(now);
    } else {
      renewed = refreshIdentity();
    }
    if (controlPlane != null) {
      try {
        controlPlane.ensure();
      } catch (IOException e) {
        LOG.warning("control plane: cannot assert its connections in charon: " + e.getMessage());
      }
    }
    Map<String, PeerTunnel> desired = own.map(o -> renderer.desired(o, all)).orElse(Map.of());
    // a denied node gets no tunnel: its block is not routed, its identity not accepted
    desired.values().removeIf(t -> denied.contains(t.peerNode()));
    List<String> inCharon = session.getConns();
    if (own.isEmpty()) {
      // Without our own block there is nothing to render; leave charon as it is.
      return new Outcome(desired, appliedNow, Map.of(), secretId(), verdict, takeCheck(), false);
    }
    if (gatewayOf != null && !own.get().block().equals(gatewaySeenFor)) {
      String gateway = gatewayOf.apply(own.get().block());
      if (!isLocalAddress.test(gateway)) {
        if (!gatewayWaitLogged) {
          gatewayWaitLogged = true;
          LOG.info(() -> "loading no tunnel until the bridge carries the gateway " + gateway
              + ": charon takes the source address of the tunnels' routes from it");
        }
        return new Outcome(desired, appliedNow, Map.of(), secretId(), verdict, takeCheck(), true);
      }
      gatewaySeenFor = own.get().block();
      gatewayWaitLogged = false;
    }
    if (renewed) {
      // Only this node's identity changed, so this node re-authenticates, whichever side started the tunnel.
      desired.values().forEach(t -> reauthPending.add(t.connName()));
    }
    if (settings.psk()) {
      secrets.expire(now, desired.values().stream().map(t -> peerIds.get(t.peerNode())).toList());
    }
    TunnelPlan plan = TunnelPlan.between(desired, appliedNow, inCharon);
    List<String> unload = plan.unload();
    if (!peersKnown) {
      // a denied node's connection goes at once: that needs no lease
      Set<String> deniedConns = denied.stream().map(PeerTunnel::connName).collect(java.util.stream.Collectors.toSet());
      unload = unload.stream().filter(deniedConns::contains).toList();
      List<String> kept = plan.unload().stream().filter(n -> !deniedConns.contains(n)).toList();
      if (!kept.isEmpty()) {
        LOG.info(() -> "keeping " + kept + " in charon until the cluster's leases are known");
      }
    }
    for (String name : unload) {
      try {
        // the peer may be gone: do not wait for its answer
        session.terminateForced(name);
      } catch (ViciCommandException noSa) {
        // nothing established: fine
      }
      session.unloadConn(name);
      for (String keyId : List.of("psk-" + name, "psk-" + name + "-accepted")) {
        try {
          session.unloadShared(keyId);
        } catch (ViciCommandException gone) {
          // key already gone (or never loaded)
        }
      }
      loadedKeys.remove(name);
      reauthPending.remove(name);
      appliedNow.remove(name);
      LOG.info(() -> "unloaded " + name);
    }
    Set<String> sharedInCharon = loadedKeys.isEmpty() ? new HashSet<>(session.getShared()) : Set.of();
    for (PeerTunnel t : settings.psk() ? desired.values() : List.<PeerTunnel>of()) {
      loadKeys(t, secrets.keysFor(peerIds.get(t.peerNode())), sharedInCharon);
      warnOnForeignSecret(t.peerNode(), peerIds.get(t.peerNode()));
    }
    for (PeerTunnel t : plan.load()) {
      session.loadConn(t.connName(), settings.psk() ? renderer.connection(t) : renderer.connection(t, identity));
      appliedNow.put(t.connName(), t);
      LOG.info(() -> "loaded " + t.connName() + " " + t.localBlock() + " <-> " + t.peerBlock() + " via "
          + t.peerAddress());
    }
    appliedNow.keySet().retainAll(desired.keySet());
    SaState sas = SaState.of(session.listSas(), desired);
    initiateBackoff.keySet().retainAll(desired.keySet());
    for (PeerTunnel t : desired.values()) {
      boolean missing = !sas.up().containsKey(t.connName()) && !sas.busy().contains(t.connName());
      if (!missing) {
        initiateBackoff.remove(t.connName());
      } else if ((t.initiator() || initiateAll) && initiateBackoff.computeIfAbsent(t.connName(),
          name -> new Backoff(MIN_INITIATE_BACKOFF, settings.reconcileInterval())).due(now)) {
        try {
          session.initiate(t.connName(), t.connName(), -1);
        } catch (ViciCommandException e) {
          LOG.warning("initiate " + t.connName() + ": " + e.errmsg());
        }
      }
    }
    reauthenticate(sas.up().keySet());
    writeRendered(desired, t -> settings.psk() ? secrets.keysFor(peerIds.get(t.peerNode())) : null);
    return new Outcome(desired, appliedNow, sas.up(), secretId(), verdict, takeCheck(), false);
  }

  /** The cluster secret in use; in certificate mode the certificate's fingerprint (only compared, never announced). */
  private String secretId() {
    return settings.psk() ? secrets.currentId() : identity.fingerprint();
  }

  /**
   * Reads the certificate, key, CA and denied-node files again and gives charon what
   * changed: the key (the old one is removed when it changed), the CA and the certificate.
   * A renewed certificate that fails the checks is not loaded: the node keeps the one it
   * has, and says why. True when a renewal was loaded into a session that held the old
   * identity, so the IKE SAs must authenticate again.
   */
  private boolean refreshIdentity() throws IOException {
    IkeAuth.Certificates files = (IkeAuth.Certificates) settings.auth();
    if (files.deniedNodes().isPresent()) {
      try {
        Set<String> now = DeniedNodes.read(files.deniedNodes().get());
        if (!now.equals(denied)) {
          LOG.warning("denied nodes (" + files.deniedNodes().get() + "): " + now);
          denied = now;
        }
      } catch (IOException e) {
        LOG.warning("cannot read denied nodes file " + files.deniedNodes().get() + ", keeping " + denied + ": " + e);
      }
    }
    try {
      NodeIdentity current = NodeIdentity.load(files, settings.nodeName(), settings.underlayAddress(),
          java.time.Instant.now());
      if (!current.fingerprint().equals(identity.fingerprint())) {
        LOG.info(() -> "renewed IKE identity: " + current + " (was " + identity + ")");
        identity = current;
      }
      lastIdentityProblem = null;
    } catch (IdentityException e) {
      if (!e.getMessage().equals(lastIdentityProblem)) {
        LOG.warning("keeping IKE identity " + identity + ": the files on disk are not usable: " + e.getMessage());
        lastIdentityProblem = e.getMessage();
      }
    }
    if (identity.fingerprint().equals(loadedIdentity)) {
      return false;
    }
    String keyId = session.loadKey("any", identity.privateKeyPem());
    session.loadCert("x509", "ca", identity.caPem());
    session.loadCert("x509", "none", identity.certificatePem());
    // the old key goes only now, so an authentication in between still finds a key and certificate that match
    if (loadedPrivateKeyId != null && !loadedPrivateKeyId.equals(keyId)) {
      try {
        session.unloadKey(loadedPrivateKeyId);
      } catch (ViciCommandException gone) {
        // already gone
      }
    }
    boolean renewal = loadedIdentity != null;
    loadedIdentity = identity.fingerprint();
    loadedPrivateKeyId = keyId;
    return renewal;
  }

  /**
   * Gives charon the pair's keys when they differ from what it holds. A changed offered key
   * on a tunnel this side starts means its IKE SA must authenticate again.
   *
   * @param sharedInCharon shared-key ids charon holds, when what we loaded is unknown (a new session)
   */
  private void loadKeys(PeerTunnel t, PairKeys keys, Set<String> sharedInCharon) throws IOException {
    String want = keys.describe();
    String had = loadedKeys.get(t.connName());
    if (want.equals(had)) {
      return;
    }
    for (ViciMessage key : renderer.sharedKeys(t, keys)) {
      session.loadShared(key);
    }
    boolean staleAccepted = had == null ? sharedInCharon.contains(t.acceptedKeyId()) : had.contains("+");
    if (keys.accepted().isEmpty() && staleAccepted) {
      try {
        session.unloadShared(t.acceptedKeyId());
      } catch (ViciCommandException gone) {
        // already gone
      }
    }
    loadedKeys.put(t.connName(), want);
    if (had != null && !had.startsWith(keys.offered().id()) && t.initiator()) {
      reauthPending.add(t.connName());
    }
  }

  /** Re-authenticates the IKE SAs whose offered key changed; a tunnel that is not up comes up with the new key anyway. */
  private void reauthenticate(Set<String> up) {
    for (String name : List.copyOf(reauthPending)) {
      reauthPending.remove(name);
      if (!up.contains(name)) {
        continue;
      }
      try {
        session.reauthenticate(name);
        LOG.info(() -> "re-authenticating " + name + (settings.psk() ? " with cluster secret " + secrets.currentId()
            : " with certificate " + identity));
      } catch (ViciException e) {
        LOG.warning("re-authentication of " + name + " failed: " + e.getMessage());
      }
    }
  }

  private void warnOnForeignSecret(String peer, String peerId) {
    if (peerId == null || peerId.equals(secrets.currentId()) || secrets.previousId().filter(peerId::equals).isPresent()) {
      warnedSecretIds.remove(peer);
      return;
    }
    if (!peerId.equals(warnedSecretIds.put(peer, peerId))) {
      LOG.warning("node " + peer + " uses cluster secret " + peerId + ", this node only " + secrets.currentId()
          + ": a rotation under way (this node's secret file will change), or the files differ and new IKE SAs"
          + " between them cannot authenticate");
    }
  }

  /** The check of a new session, once: it is published with the reconcile's outcome. */
  private Optional<CharonCheck> takeCheck() {
    Optional<CharonCheck> check = Optional.ofNullable(unannouncedCheck);
    unannouncedCheck = null;
    return check;
  }

  /** Connects (again) when needed; true when the session is new, so everything must be reloaded. */
  private boolean ensureSession() throws IOException {
    if (session != null && session.isOpen()) {
      session.version();
      return false;
    }
    ViciSession s = ViciSession.connect(settings.viciSocket());
    try {
      s.version();
      // A tunnel that went down is initiated again at once only by the side meant to start
      // it; the other side waits for its timer. Both re-initiating together made duplicate
      // IKE SAs after every `swanctl --terminate` or peer reboot.
      s.subscribe("child-updown", e -> vertx.runOnContext(v -> requestReconcile(false)));
      s.subscribe("ike-updown", e -> vertx.runOnContext(v -> requestReconcile(false)));
      IkeFailureLog failureLog = new IkeFailureLog();
      s.subscribe("log", e -> failureLog.read(e.message()).ifPresent(f -> {
        long seen = System.currentTimeMillis();
        vertx.runOnContext(v -> onIkeFailure(f, seen));
      }));
      CharonAlgorithms algorithms = CharonAlgorithms.of(s.getAlgorithms(), s.stats());
      verdict = algorithms.check(ikeProposals, espProposals, settings.datapath() == Datapath.LIBIPSEC);
      unannouncedCheck = new CharonCheck(verdict.capable(), verdict.missing(), verdict.problem(), algorithms.plugins());
    } catch (IOException e) {
      s.close();
      throw e;
    }
    s.onClose(why -> vertx.runOnContext(v -> requestReconcile(false)));
    session = s;
    LOG.info(() -> "connected to charon on " + settings.viciSocket());
    return true;
  }

  /**
   * What list-sas says about the desired tunnels.
   *
   * @param up tunnels whose IKE SA is established with an installed CHILD SA
   * @param busy connections with an SA on its way up (or up), where an initiate would only duplicate it
   */
  record SaState(Map<String, PeerTunnel> up, Set<String> busy) {
    static SaState of(List<ViciMessage> listSas, Map<String, PeerTunnel> desired) {
      Map<String, PeerTunnel> up = new HashMap<>();
      Set<String> busy = new HashSet<>();
      for (ViciMessage sa : listSas) {
        sa.sections().forEach((name, ike) -> {
          String state = ike.value("state").orElse("");
          Map<String, ViciMessage> children = ike.section("child-sas").map(ViciMessage::sections).orElse(Map.of());
          boolean installed = children.values().stream()
              .anyMatch(child -> "INSTALLED".equals(child.value("state").orElse("")));
          if (state.equals("CONNECTING") || (state.equals("ESTABLISHED") && !children.isEmpty())) {
            busy.add(name);
          }
          PeerTunnel t = desired.get(name);
          if (t != null && state.equals("ESTABLISHED") && installed) {
            up.put(name, t);
          }
        });
      }
      return new SaState(up, busy);
    }
  }

  /** The swanctl.conf equivalent, 0600 (it holds keys), replaced atomically, only when it changes. */
  private void writeRendered(Map<String, PeerTunnel> desired,
                             java.util.function.Function<PeerTunnel, PairKeys> keys) throws IOException {
    Path target = settings.renderedConfig();
    // Comparing the inputs costs far less than rendering (HKDF per pair): most reconciles change nothing.
    Map<String, String> keyIds = new HashMap<>(Math.max(16, desired.size() * 2));
    desired.values().forEach(t -> keyIds.put(t.connName(), settings.psk() ? keys.apply(t).describe() : secretId()));
    if (desired.equals(lastRenderedTunnels) && keyIds.equals(lastRenderedKeys) && Files.exists(target)) {
      return;
    }
    String text = settings.auth() instanceof IkeAuth.Certificates files ? renderer.swanctlConf(desired.values(), files)
        : renderer.swanctlConf(desired.values(), keys);
    Path dir = target.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, ".swanctl", ".tmp",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    try {
      Files.writeString(tmp, text);
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
    lastRenderedTunnels = Map.copyOf(desired);
    lastRenderedKeys = keyIds;
  }

  private void apply(Outcome outcome) {
    charonProblem = null;
    applied = outcome.applied();
    long now = System.nanoTime();
    if (outcome.checked().isPresent()) {
      // a new charon session: everything was loaded afresh
      loadedNanos.clear();
    }
    loadedNanos.keySet().retainAll(applied.keySet());
    applied.keySet().forEach(name -> loadedNanos.putIfAbsent(name, now));
    capabilityProblem = outcome.verdict() == null || outcome.verdict().capable() ? null : outcome.verdict().problem();
    outcome.checked().ifPresent(check -> {
      if (check.capable()) {
        LOG.info(() -> "charon can do the proposals (IKE " + settings.proposals().ike() + ", ESP "
            + settings.proposals().esp() + ")");
      } else {
        LOG.severe(() -> "node not ready: " + check.problem());
      }
      events.publish(Addresses.TUNNEL_CHARON, check);
    });
    failures.keySet().removeIf(name -> outcome.up().containsKey(name) || !outcome.desired().containsKey(name));
    if (settings.psk() && !outcome.secretId().equals(announcedSecretId)) {
      // Announced only now that charon holds the new keys: a peer that reacts finds them there.
      announcedSecretId = outcome.secretId();
      events.publish(Addresses.TUNNEL_SECRET, new SecretAnnouncement(announcedSecretId, false));
    }
    for (PeerTunnel t : outcome.up().values()) {
      if (!upTunnels.containsKey(t.connName())) {
        events.publish(Addresses.TUNNEL_UP, new TunnelEvent(t.peerNode(), t.peerBlock(), ""));
      }
    }
    for (PeerTunnel t : upTunnels.values()) {
      if (!outcome.up().containsKey(t.connName())) {
        String reason = outcome.desired().containsKey(t.connName()) ? "IKE or CHILD SA down" : "peer lease gone";
        events.publish(Addresses.TUNNEL_DOWN, new TunnelEvent(t.peerNode(), t.peerBlock(), reason));
      }
    }
    upTunnels = new HashMap<>(outcome.up());
    if (outcome.awaitingGateway() && gatewayTimer < 0 && !stopped) {
      gatewayTimer = vertx.setTimer(GATEWAY_POLL_MILLIS, id -> {
        gatewayTimer = -1;
        requestReconcile(false);
      });
    }
  }

  /**
   * A restarted charon answers within a second or two: without this the tunnels waited for
   * the next timer tick (up to the whole interval) after it was back.
   */
  private void retrySoon() {
    if (stopped || retryTimer >= 0) {
      return;
    }
    long delay = retryDelayMillis;
    retryDelayMillis = Math.min(retryDelayMillis * 2, settings.reconcileInterval().toMillis());
    retryTimer = vertx.setTimer(delay, id -> {
      retryTimer = -1;
      requestReconcile(true);
    });
  }

  private void failed(Throwable cause) {
    String problem = cause.getMessage() == null ? cause.toString() : cause.getMessage();
    if (!problem.equals(charonProblem)) {
      LOG.log(Level.WARNING, "reconcile failed: " + problem);
    }
    charonProblem = problem;
    // What charon loaded is unknown now: reload all once it answers again.
    applied = new HashMap<>();
    loadedNanos.clear();
    for (PeerTunnel t : upTunnels.values()) {
      events.publish(Addresses.TUNNEL_DOWN, new TunnelEvent(t.peerNode(), t.peerBlock(),
          "charon does not answer: " + problem));
    }
    upTunnels = new HashMap<>();
  }
}

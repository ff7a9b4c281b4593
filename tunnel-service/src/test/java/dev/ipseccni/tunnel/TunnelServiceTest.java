package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.LeaseSnapshot;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.bus.message.TunnelEvent;
import dev.ipseccni.tunnel.lab.NetnsLab;
import dev.ipseccni.tunnel.vici.ViciSession;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.Message;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Two nodes, each a namespace with its own charon (libipsec), each with a tunnel service on
 * one Vert.x: lease events in, tunnels in charon and tunnel events out.
 */
class TunnelServiceTest {
  private static final NodeBlockLease LEASE_A = new NodeBlockLease("node-a", "192.168.250.1", "10.128.1.0/24", 1,
      System.currentTimeMillis());
  private static final NodeBlockLease LEASE_B = new NodeBlockLease("node-b", "192.168.250.2", "10.128.2.0/24", 1,
      System.currentTimeMillis());

  private NetnsLab lab;
  private NetnsLab.Charon charonA;
  private NetnsLab.Charon charonB;
  private Vertx vertx;
  private EventPublisher ipam;
  /** Tunnel events by address and publishing node, so waiting for one never drops another. */
  private final Map<String, BlockingQueue<TunnelEvent>> tunnelEvents = new ConcurrentHashMap<>();
  private Path secretFile;

  @BeforeEach
  void twoNodes() throws Exception {
    NetnsLab.requireCharonAndRoot();
    lab = new NetnsLab();
    NetnsLab.TwoNodes nodes = lab.twoNodes("svc-");
    charonA = nodes.a();
    charonB = nodes.b();

    secretFile = lab.dir().resolve("cluster.secret");
    Files.writeString(secretFile, "the-cluster-secret-of-the-service-test-0123456789");
    Files.setPosixFilePermissions(secretFile, PosixFilePermissions.fromString("rw-------"));

    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
    vertx.eventBus().<Event>consumer(Addresses.TUNNEL_UP, m -> queue(m.body().address(), m.body().node())
        .add((TunnelEvent) m.body().payload()));
    vertx.eventBus().<Event>consumer(Addresses.TUNNEL_DOWN, m -> queue(m.body().address(), m.body().node())
        .add((TunnelEvent) m.body().payload()));
    ipam = new EventPublisher(vertx.eventBus(), "ipam-test", 1);
    deploy("node-a", "192.168.250.1", charonA);
    deploy("node-b", "192.168.250.2", charonB);
  }

  private final java.util.List<String> deployments = new java.util.ArrayList<>();

  private void deploy(String node, String underlay, NetnsLab.Charon charon) throws Exception {
    deploy(node, underlay, charon, Duration.ofMillis(500));
  }

  private void deploy(String node, String underlay, NetnsLab.Charon charon, Duration reconcile) throws Exception {
    TunnelSettings settings = new TunnelSettings(node, underlay, charon.vici(), secretFile, Datapath.LIBIPSEC,
        Proposals.DEFAULT, reconcile, lab.dir().resolve(node).resolve("swanctl.conf"),
        TunnelSettings.DEFAULT_SECRET_GRACE);
    deployments.add(vertx.deployVerticle(new TunnelService(settings, new EventPublisher(vertx.eventBus(), node, 1)))
        .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS));
  }

  @AfterEach
  void tearDown() throws Exception {
    if (vertx != null) {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    if (lab != null) {
      lab.close();
    }
  }

  private void publishLeases() {
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(LEASE_A));
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(LEASE_B));
  }

  private BlockingQueue<TunnelEvent> queue(String address, String node) {
    return tunnelEvents.computeIfAbsent(address + "/" + node, k -> new LinkedBlockingQueue<>());
  }

  /** The next tunnel event published by {@code node} on {@code address}. */
  private TunnelEvent next(String address, String node) throws InterruptedException {
    TunnelEvent e = queue(address, node).poll(30, TimeUnit.SECONDS);
    assertNotNull(e, "no " + address + " from " + node + " within 30 s\n" + charonA.logTail());
    return e;
  }

  private void awaitPing() {
    NetnsLab.awaitTrue(Duration.ofSeconds(20),
        () -> NetnsLab.status(charonA.namespace(), "ping", "-c", "1", "-W", "1", "10.128.2.1") == 0,
        "ping from node-a to node-b's block through the tunnel");
  }

  private ComponentStatus status(String node) throws Exception {
    return vertx.eventBus().<ComponentStatus>request(Addresses.nodeStatus(node, Addresses.TUNNEL), "status")
        .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).body();
  }

  @Test
  void peerLeasesBringUpAnEncryptedTunnel() throws Exception {
    publishLeases();
    TunnelEvent upA = next(Addresses.TUNNEL_UP, "node-a");
    assertEquals("node-b", upA.peer());
    assertEquals("10.128.2.0/24", upA.peerBlock());
    next(Addresses.TUNNEL_UP, "node-b");
    awaitPing();
    assertTrue(status("node-a").ready());

    Path rendered = lab.dir().resolve("node-a").resolve("swanctl.conf");
    NetnsLab.awaitTrue(Duration.ofSeconds(10), () -> Files.exists(rendered), "rendered swanctl.conf");
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(rendered)));
    assertTrue(Files.readString(rendered).contains("peer-node-b {"));
  }

  @Test
  void peerLeaseReleaseUnloadsItsConnection() throws Exception {
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    ipam.publish(Addresses.LEASE_RELEASED, new LeaseEvent(LEASE_B));
    TunnelEvent down = next(Addresses.TUNNEL_DOWN, "node-a");
    assertEquals("node-b", down.peer());
    try (ViciSession s = charonA.connect()) {
      NetnsLab.awaitTrue(Duration.ofSeconds(10), () -> {
        try {
          return !s.getConns().contains("peer-node-b");
        } catch (Exception e) {
          return false;
        }
      }, "peer-node-b unloaded from charon on node-a");
    }
  }

  /** charon's connections on node-a, once they satisfy {@code loaded}. */
  private java.util.List<String> connsOnA(java.util.function.Predicate<java.util.List<String>> loaded, String what)
      throws Exception {
    java.util.List<String> conns = new java.util.ArrayList<>();
    try (ViciSession s = charonA.connect()) {
      NetnsLab.awaitTrue(Duration.ofSeconds(20), () -> {
        try {
          conns.clear();
          conns.addAll(s.getConns());
          return loaded.test(conns);
        } catch (Exception e) {
          return false;
        }
      }, what);
    }
    return conns;
  }

  /**
   * node-b's release was missed (a partition), and node-c took its block: node-a must not
   * keep two connections whose remote_ts is that block, only one, to its new holder.
   */
  @Test
  void blockTakenOverWithoutASeenReleaseHasOneConnectionToItsNewHolder() throws Exception {
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(new NodeBlockLease("node-c", "192.168.250.3",
        LEASE_B.block(), LEASE_B.epoch() + 1, System.currentTimeMillis())));

    java.util.List<String> conns = connsOnA(c -> c.contains("peer-node-c"), "peer-node-c loaded on node-a");
    assertFalse(conns.contains("peer-node-b"), "two connections for block " + LEASE_B.block() + ": " + conns);
    assertEquals("node-b", next(Addresses.TUNNEL_DOWN, "node-a").peer());
  }

  /** A lease not renewed within IPAM's grace is no peer (the cluster may have handed its block on). */
  @Test
  void leasePastItsGraceIsNoPeer() throws Exception {
    long longAgo = System.currentTimeMillis() - TunnelService.DEFAULT_LEASE_GRACE.toMillis() - 60_000;
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(LEASE_A));
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(new NodeBlockLease("node-b", "192.168.250.2",
        LEASE_B.block(), 1, longAgo)));
    // a live peer published after it: once its connection is loaded, node-b's lease was seen and weighed
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(new NodeBlockLease("node-c", "192.168.250.3",
        "10.128.3.0/24", 1, System.currentTimeMillis())));

    java.util.List<String> conns = connsOnA(c -> c.contains("peer-node-c"), "peer-node-c loaded on node-a");
    assertFalse(conns.contains("peer-node-b"), "a connection for an outlived lease: " + conns);
  }

  @Test
  void uninstallRemovesOurConnectionsKeysAndFileButNothingElse() throws Exception {
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    Path rendered = lab.dir().resolve("node-a").resolve("swanctl.conf");
    NetnsLab.awaitTrue(Duration.ofSeconds(10), () -> Files.exists(rendered), "rendered swanctl.conf");
    // the agent is stopped first, as the uninstall command expects; a foreign connection stays
    vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    vertx = null;
    try (ViciSession s = charonA.connect()) {
      var psk = dev.ipseccni.tunnel.vici.ViciMessage.builder().put("auth", "psk").build();
      s.loadConn("operator-conn", dev.ipseccni.tunnel.vici.ViciMessage.builder()
          .section("local", psk).section("remote", psk).build());
    }

    TunnelUninstall.Removed removed = TunnelUninstall.run(charonA.vici(), rendered);

    assertEquals(java.util.List.of("peer-node-b"), removed.connections());
    assertEquals(java.util.List.of("psk-peer-node-b"), removed.sharedKeys());
    assertTrue(removed.renderedFile());
    assertFalse(Files.exists(rendered));
    try (ViciSession s = charonA.connect()) {
      assertEquals(java.util.List.of("operator-conn"), s.getConns());
      assertEquals(java.util.List.of(), s.getShared());
      assertEquals(java.util.List.of(), s.listSas());
    }
  }

  @Test
  void closedTunnelIsInitiatedAgain() throws Exception {
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    next(Addresses.TUNNEL_UP, "node-b");
    String before = NetnsLab.establishedIkeSaId(charonB, "peer-node-a").orElseThrow();
    try (ViciSession s = charonB.connect()) {
      s.terminate("peer-node-a");
    }
    // node-a starts this tunnel again at once: node-b's reconcile may never see it down between
    // two list-sas, so what is waited for is a new IKE SA, not a tunnel.down event.
    NetnsLab.awaitTrue(Duration.ofSeconds(30), () -> NetnsLab.establishedIkeSaId(charonB, "peer-node-a")
        .filter(id -> !id.equals(before)).isPresent(), "a new IKE SA between node-b and node-a");
    awaitPing();
  }

  @Test
  void restartedCharonIsReloadedAndTheTunnelReturns() throws Exception {
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    lab.stop(charonA);
    TunnelEvent down = next(Addresses.TUNNEL_DOWN, "node-a");
    assertEquals("node-b", down.peer());
    NetnsLab.awaitTrue(Duration.ofSeconds(10), () -> {
      try {
        return !status("node-a").ready();
      } catch (Exception e) {
        return false;
      }
    }, "node-a's tunnel service not ready while charon is down");

    charonA = lab.charon(charonA.namespace());
    next(Addresses.TUNNEL_UP, "node-a");
    try (ViciSession s = charonA.connect()) {
      assertTrue(s.getConns().contains("peer-node-b"), "connection reloaded into the new charon");
    }
    assertTrue(status("node-a").ready());
    awaitPing();
  }

  @Test
  void restartedCharonIsReloadedWithoutWaitingForTheReconcileTimer() throws Exception {
    for (String id : deployments) {
      vertx.undeploy(id).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    // A timer far beyond the test's waits: only the service's own retries can bring the tunnel back.
    deploy("node-a", "192.168.250.1", charonA, Duration.ofMinutes(10));
    deploy("node-b", "192.168.250.2", charonB, Duration.ofMinutes(10));
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    lab.stop(charonA);
    next(Addresses.TUNNEL_DOWN, "node-a");
    charonA = lab.charon(charonA.namespace());
    next(Addresses.TUNNEL_UP, "node-a");
    awaitPing();
  }

  /** node-a's tunnel service stopped and started again (an agent restart); the snapshot request it sends is held. */
  private Message<Object> restartNodeAWithTheSnapshotHeld(BlockingQueue<Message<Object>> snapshotRequests)
      throws Exception {
    for (String id : deployments) {
      vertx.undeploy(id).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    deployments.clear();
    tunnelEvents.clear();
    vertx.eventBus().<Object>consumer(Addresses.LEASE_SNAPSHOT, snapshotRequests::add)
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    deploy("node-a", "192.168.250.1", charonA);
    Message<Object> request = snapshotRequests.poll(30, TimeUnit.SECONDS);
    assertNotNull(request, "the restarted service asks for the cluster's leases");
    return request;
  }

  /**
   * charon installs a connection's route (table 220, the gateway as source) only if a local
   * address lies in the local traffic selector when it installs the policies. node-a's bridge
   * lacks its gateway: node-a loads no tunnel, however often it reconciles; once the address is
   * there it loads, and charon's route to node-b's block has the gateway as its source.
   */
  @Test
  void tunnelsLoadOnlyOnceTheBridgeCarriesTheGatewaySoCharonRoutesFromIt() throws Exception {
    for (String id : deployments) {
      vertx.undeploy(id).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    deployments.clear();
    String nsA = charonA.namespace();
    NetnsLab.exec(nsA, "ip", "addr", "flush", "dev", "blk");
    TunnelSettings settings = new TunnelSettings("node-a", "192.168.250.1", charonA.vici(), secretFile,
        Datapath.LIBIPSEC, Proposals.DEFAULT, Duration.ofMillis(500), lab.dir().resolve("node-a").resolve("swanctl.conf"),
        TunnelSettings.DEFAULT_SECRET_GRACE);
    TunnelService a = new TunnelService(settings, new EventPublisher(vertx.eventBus(), "node-a", 1));
    java.util.Map<String, String> gateways = java.util.Map.of(LEASE_A.block(), "10.128.1.1");
    a.loadTunnelsAfterGateway(gateways::get, address -> NetnsLab.exec(nsA, "ip", "-4", "-o", "addr", "show")
        .contains(" " + address + "/"));
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    Metrics.addRegistry(registry);
    try {
      deployments.add(vertx.deployVerticle(a).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS));
      deploy("node-b", "192.168.250.2", charonB);
      ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(LEASE_B));
      awaitReconcilesWithTheOwnLease(registry);
      assertFalse(connsOnA(c -> true, "node-a's connections").contains("peer-node-b"),
          "node-a loaded its tunnel before its bridge had the gateway");
    } finally {
      Metrics.removeRegistry(registry);
    }

    NetnsLab.exec(nsA, "ip", "addr", "add", "10.128.1.1/24", "dev", "blk");
    next(Addresses.TUNNEL_UP, "node-a");
    String routes = NetnsLab.exec(nsA, "ip", "route", "show", "table", "220");
    assertTrue(routes.contains("10.128.2.0/24") && routes.contains("src 10.128.1.1"),
        "charon's route to node-b's block from the gateway, table 220:\n" + routes);
    awaitPing();
  }

  /** Reconciles of the one tunnel service deployed, once the own lease is in: enough to have acted on it. */
  private void awaitReconcilesWithTheOwnLease(SimpleMeterRegistry registry) {
    double before = reconcileRuns(registry);
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(LEASE_A));
    NetnsLab.awaitTrue(Duration.ofSeconds(20), () -> reconcileRuns(registry) >= before + 3,
        "three reconciles of node-a after its own lease");
  }

  private static double reconcileRuns(SimpleMeterRegistry registry) {
    return registry.find(TunnelService.RECONCILE_RUNS).counters().stream().mapToDouble(c -> c.count()).sum();
  }

  /**
   * An agent restart: the new tunnel service hears its own lease before the peers' (IPAM's
   * own event is local, the cluster's lease map answers later). It must keep charon's
   * connection and its SA until it knows the cluster's leases, then keep them because the
   * peer holds its lease: the same IKE SA before and after, never unloaded.
   */
  @Test
  void restartedServiceKeepsTheTunnelsUntilItKnowsTheClusterLeases() throws Exception {
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    String sa = NetnsLab.establishedIkeSaIds(charonA, "peer-node-b").get(0);
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    Metrics.addRegistry(registry);
    try {
      Message<Object> request = restartNodeAWithTheSnapshotHeld(new LinkedBlockingQueue<>());
      awaitReconcilesWithTheOwnLease(registry);
      assertTrue(connsOnA(c -> true, "node-a's connections").contains("peer-node-b"),
          "peer-node-b unloaded before the cluster's leases were known");
      assertEquals(java.util.List.of(sa), NetnsLab.establishedIkeSaIds(charonA, "peer-node-b"), "the same IKE SA");

      request.reply(new LeaseSnapshot(java.util.List.of(LEASE_A, LEASE_B), System.currentTimeMillis()));
      assertEquals("node-b", next(Addresses.TUNNEL_UP, "node-a").peer(), "the restarted service sees the tunnel up");
      assertEquals(java.util.List.of(), java.util.List.copyOf(queue(Addresses.TUNNEL_DOWN, "node-a")),
          "tunnel.down from the restarted node-a");
      assertEquals(java.util.List.of(sa), NetnsLab.establishedIkeSaIds(charonA, "peer-node-b"),
          "the same IKE SA after the snapshot");
      awaitPing();
    } finally {
      Metrics.removeRegistry(registry);
    }
  }

  /** The other half: once the snapshot says the peer holds no lease, its connection goes. */
  @Test
  void restartedServiceUnloadsWhatTheClusterLeasesNoLongerHold() throws Exception {
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    Metrics.addRegistry(registry);
    try {
      Message<Object> request = restartNodeAWithTheSnapshotHeld(new LinkedBlockingQueue<>());
      awaitReconcilesWithTheOwnLease(registry);
      request.reply(new LeaseSnapshot(java.util.List.of(LEASE_A), System.currentTimeMillis()));
      connsOnA(c -> !c.contains("peer-node-b"), "peer-node-b unloaded once the snapshot lacks node-b's lease");
    } finally {
      Metrics.removeRegistry(registry);
    }
  }

  @Test
  void unreadableSecretFailsTheStartWithAClearReason() throws Exception {
    Path loose = lab.dir().resolve("loose.secret");
    Files.writeString(loose, "the-cluster-secret-of-the-service-test-0123456789");
    Files.setPosixFilePermissions(loose, PosixFilePermissions.fromString("rw-r--r--"));
    TunnelSettings settings = new TunnelSettings("node-x", "192.168.250.9", charonA.vici(), loose, Datapath.LIBIPSEC,
        Proposals.DEFAULT, Duration.ofSeconds(1), lab.dir().resolve("x.conf"), TunnelSettings.DEFAULT_SECRET_GRACE);
    Throwable failure = vertx.deployVerticle(new TunnelService(settings, ipam))
        .toCompletionStage().toCompletableFuture().handle((ok, e) -> e).get(30, TimeUnit.SECONDS);
    assertNotNull(failure, "deployment must fail");
    assertTrue(String.valueOf(failure.getMessage()).contains("0600"), String.valueOf(failure));
    assertFalse(String.valueOf(failure.getMessage()).contains("the-cluster-secret"));
  }
}

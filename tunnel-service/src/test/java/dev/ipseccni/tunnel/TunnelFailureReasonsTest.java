package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.CharonCheck;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.bus.message.TunnelFailure;
import dev.ipseccni.tunnel.lab.NetnsLab;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Why a tunnel is not up, as the tunnel service tells it, with two real charons: a charon
 * without the plugins the proposals need, different cluster secrets, proposals the peer
 * refuses, a peer that does not answer. Each case recovers once its cause is fixed.
 */
class TunnelFailureReasonsTest {
  /** The lab's plugins without gcm and openssl: charon has no AES-GCM at all (a --no-install-recommends strongSwan). */
  private static final String NO_GCM = NetnsLab.PLUGINS.replace(" gcm", "").replace(" openssl", "");
  private static final Duration SEEN = Duration.ofSeconds(60);

  private NetnsLab lab;
  private NetnsLab.Charon charonA;
  private NetnsLab.Charon charonB;
  private Vertx vertx;
  private EventPublisher ipam;
  private final Map<String, BlockingQueue<Event>> events = new ConcurrentHashMap<>();
  private final Map<String, String> deployments = new HashMap<>();
  private final Map<String, TunnelService> services = new HashMap<>();

  @BeforeEach
  void twoNodes() throws Exception {
    lab = new NetnsLab();
    NetnsLab.TwoNodes nodes = lab.twoNodes("why-");
    charonA = nodes.a();
    charonB = nodes.b();
    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
    for (String address : List.of(Addresses.TUNNEL_UP, Addresses.TUNNEL_DOWN, Addresses.TUNNEL_FAILED,
        Addresses.TUNNEL_CHARON)) {
      vertx.eventBus().<Event>consumer(address, m -> queue(address, m.body().node()).add(m.body()));
    }
    ipam = new EventPublisher(vertx.eventBus(), "ipam-test", 1);
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

  @Test
  void charonWithoutAesGcmMakesTheServiceNotReadyNamingTheAlgorithmAndTheRemedy() throws Exception {
    lab.stop(charonA);
    charonA = lab.charon(charonA.namespace(), NO_GCM, "");
    Path secret = secret("a", "the-cluster-secret-of-the-failure-test-0123456789");
    deploy("node-a", "192.168.250.1", charonA, secret, Proposals.DEFAULT);
    deploy("node-b", "192.168.250.2", charonB, secret, Proposals.DEFAULT);

    CharonCheck check = (CharonCheck) next(Addresses.TUNNEL_CHARON, "node-a").payload();
    assertFalse(check.capable(), check.toString());
    assertEquals(List.of("AES_GCM_16_256"), check.missing());
    assertTrue(check.problem().startsWith("charon cannot do AES_GCM_16_256 ("), check.problem());
    assertTrue(check.problem().contains("load the openssl or gcm plugin (Debian: libstrongswan-standard-plugins)"),
        check.problem());
    assertFalse(check.plugins().contains("openssl"), check.plugins().toString());
    assertTrue(((CharonCheck) next(Addresses.TUNNEL_CHARON, "node-b").payload()).capable(), "node-b's charon has all");

    ComponentStatus status = status("node-a");
    assertFalse(status.ready(), status.toString());
    assertTrue(status.reason().contains("charon cannot do AES_GCM_16_256"), status.reason());
    assertTrue(status.reason().contains("libstrongswan-standard-plugins"), status.reason());

    // charon restarted with the plugins: the service notices the new session and checks again
    lab.stop(charonA);
    charonA = lab.charon(charonA.namespace());
    CharonCheck again = (CharonCheck) next(Addresses.TUNNEL_CHARON, "node-a").payload();
    assertTrue(again.capable(), again.toString());
    assertEquals("", again.problem());
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    NetnsLab.awaitTrue(SEEN, () -> status("node-a").ready(), "node-a ready once charon has AES-GCM");
  }

  @Test
  void differentClusterSecretsSayAuthenticationFailedOnBothEndsUntilTheSecretIsFixed() throws Exception {
    Path secretA = secret("a", "the-cluster-secret-of-the-failure-test-0123456789");
    Path secretB = secret("b", "another-cluster-secret-entirely-9876543210-abcdef");
    deploy("node-a", "192.168.250.1", charonA, secretA, Proposals.DEFAULT);
    deploy("node-b", "192.168.250.2", charonB, secretB, Proposals.DEFAULT);
    publishLeases();

    TunnelFailure atA = failure("node-a", IkeFailureLog.AUTHENTICATION_FAILED);
    assertEquals("node-b", atA.peer());
    assertEquals("10.128.2.0/24", atA.peerBlock());
    TunnelFailure atB = failure("node-b", IkeFailureLog.AUTHENTICATION_FAILED);
    assertEquals("node-a", atB.peer());
    assertTrue(atA.seenMillis() > 0 && !atA.detail().isEmpty(), atA.toString());
    ComponentStatus degraded = status("node-a");
    assertTrue(degraded.ready(), "one broken peer degrades the node, it does not stop it: " + degraded);
    assertEquals(1, degraded.degraded().size(), degraded.toString());
    assertTrue(degraded.degraded().get(0).startsWith("tunnel to node-b not up: authentication failed"),
        degraded.toString());

    Files.writeString(secretB, Files.readString(secretA));
    next(Addresses.TUNNEL_UP, "node-a");
    next(Addresses.TUNNEL_UP, "node-b");
    NetnsLab.awaitTrue(SEEN, () -> status("node-a").degraded().isEmpty() && status("node-b").degraded().isEmpty(),
        "no failure kept once the tunnel is up");
    assertEquals(Map.of(), services.get("node-a").failures());
  }

  @Test
  void proposalsThePeerRefusesSayNoProposalChosenOnBothEndsUntilTheyMatch() throws Exception {
    Path secret = secret("a", "the-cluster-secret-of-the-failure-test-0123456789");
    deploy("node-a", "192.168.250.1", charonA, secret, Proposals.DEFAULT);
    deploy("node-b", "192.168.250.2", charonB, secret, new Proposals("aes128gcm16-prfsha256-ecp256", "aes128gcm16-ecp256"));
    publishLeases();

    assertEquals("node-b", failure("node-a", IkeFailureLog.NO_PROPOSAL_CHOSEN).peer());
    // node-b refuses node-a's first message before it has picked a connection: known by address
    assertEquals("node-a", failure("node-b", IkeFailureLog.NO_PROPOSAL_CHOSEN).peer());

    vertx.undeploy(deployments.remove("node-b")).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    deploy("node-b", "192.168.250.2", charonB, secret, Proposals.DEFAULT);
    publishLeases();
    next(Addresses.TUNNEL_UP, "node-a");
    NetnsLab.awaitTrue(SEEN, () -> status("node-a").degraded().isEmpty(), "node-a no longer degraded");
  }

  @Test
  void aPeerThatDoesNotAnswerSaysPeerNotResponding() throws Exception {
    lab.stop(charonA);
    // one retransmit, a second apart: charon gives up within seconds instead of minutes
    charonA = lab.charon(charonA.namespace(), NetnsLab.PLUGINS, "  retransmit_tries = 1\n  retransmit_timeout = 1");
    lab.stop(charonB);
    deploy("node-a", "192.168.250.1", charonA, secret("a", "the-cluster-secret-of-the-failure-test-0123456789"),
        Proposals.DEFAULT);
    publishLeases();
    TunnelFailure f = failure("node-a", IkeFailureLog.PEER_NOT_RESPONDING);
    assertEquals("node-b", f.peer());
    assertTrue(f.detail().contains("retransmit") || f.detail().contains("not responding"), f.detail());
  }

  // ------------------------------------------------------------------ helpers

  private Path secret(String name, String value) throws Exception {
    Path file = lab.dir().resolve(name + ".secret");
    Files.writeString(file, value);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
    return file;
  }

  private void deploy(String node, String underlay, NetnsLab.Charon charon, Path secret, Proposals proposals)
      throws Exception {
    TunnelSettings settings = new TunnelSettings(node, underlay, charon.vici(), secret, Datapath.LIBIPSEC,
        proposals, Duration.ofMillis(500), lab.dir().resolve(node).resolve("swanctl.conf"),
        TunnelSettings.DEFAULT_SECRET_GRACE);
    TunnelService service = new TunnelService(settings, new EventPublisher(vertx.eventBus(), node, 1));
    services.put(node, service);
    deployments.put(node, vertx.deployVerticle(service).toCompletionStage().toCompletableFuture()
        .get(30, TimeUnit.SECONDS));
  }

  /** Both leases, renewed now: the peer view drops a lease of another node not renewed within the grace. */
  private void publishLeases() {
    long now = System.currentTimeMillis();
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(new NodeBlockLease("node-a", "192.168.250.1", "10.128.1.0/24", 1, now)));
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(new NodeBlockLease("node-b", "192.168.250.2", "10.128.2.0/24", 1, now)));
  }

  private BlockingQueue<Event> queue(String address, String node) {
    return events.computeIfAbsent(address + "/" + node, k -> new LinkedBlockingQueue<>());
  }

  private Event next(String address, String node) throws InterruptedException {
    Event e = queue(address, node).poll(SEEN.toSeconds(), TimeUnit.SECONDS);
    assertNotNull(e, "no " + address + " from " + node + " within " + SEEN.toSeconds() + " s\nnode-a's charon:\n"
        + charonA.logTail() + "\nnode-b's charon:\n" + charonB.logTail());
    return e;
  }

  /** The first tunnel.failed of {@code node} with this reason (other reasons on the way are skipped, and listed on failure). */
  private TunnelFailure failure(String node, String reason) throws InterruptedException {
    List<String> seen = new ArrayList<>();
    long end = System.nanoTime() + SEEN.toNanos();
    while (System.nanoTime() < end) {
      Event e = queue(Addresses.TUNNEL_FAILED, node).poll(1, TimeUnit.SECONDS);
      if (e != null) {
        TunnelFailure f = (TunnelFailure) e.payload();
        if (f.reason().equals(reason)) {
          return f;
        }
        seen.add(f.toString());
      }
    }
    throw new AssertionError("no tunnel.failed '" + reason + "' from " + node + "; other failures: " + seen
        + "\nnode-a's charon:\n" + charonA.logTail() + "\nnode-b's charon:\n" + charonB.logTail());
  }

  private ComponentStatus status(String node) {
    try {
      return vertx.eventBus().<ComponentStatus>request(Addresses.nodeStatus(node, Addresses.TUNNEL), "status")
          .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).body();
    } catch (Exception e) {
      throw new AssertionError("no status from " + node, e);
    }
  }
}

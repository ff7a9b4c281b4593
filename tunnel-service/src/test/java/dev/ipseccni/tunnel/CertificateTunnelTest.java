package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.tunnel.identity.ClusterCa;
import dev.ipseccni.tunnel.identity.IkeAuth;
import dev.ipseccni.tunnel.identity.NodeIdentity;
import dev.ipseccni.tunnel.lab.NetnsLab;
import dev.ipseccni.tunnel.vici.ViciMessage;
import dev.ipseccni.tunnel.vici.ViciSession;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Per-node certificates with real charons (libipsec) and real tunnel services: nodes with
 * certificates of the cluster CA establish; a certificate of another CA, and another node's
 * valid certificate presented for a node's lease, are refused; a renewed certificate is
 * loaded without dropping the tunnel; a denied node is cut off within a reconcile while the
 * others keep their SAs.
 */
class CertificateTunnelTest {
  private static final NodeBlockLease LEASE_A = new NodeBlockLease("node-a", "192.168.250.1", "10.128.1.0/24", 1, 0);
  private static final NodeBlockLease LEASE_B = new NodeBlockLease("node-b", "192.168.250.2", "10.128.2.0/24", 1, 0);
  private static final NodeBlockLease LEASE_C = new NodeBlockLease("node-c", "192.168.250.3", "10.128.3.0/24", 1, 0);
  private static final Duration RECONCILE = Duration.ofMillis(500);

  private NetnsLab lab;
  private Vertx vertx;
  private EventPublisher ipam;
  private Path ca;
  private final Map<String, TunnelService> services = new HashMap<>();

  @BeforeEach
  void clusterCa() throws Exception {
    NetnsLab.requireCharonAndRoot();
    lab = new NetnsLab();
    ca = lab.dir().resolve("ca");
    ClusterCa.initCa(ca, "test cluster CA", Duration.ofDays(1));
    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
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

  /** A node's certificate directory, issued by the CA in {@code caDir}. */
  private Path issue(Path caDir, String node, String address) throws Exception {
    Path dir = lab.dir().resolve("pki-" + node + "-" + caDir.getFileName());
    ClusterCa.issue(caDir, node, address, dir, Duration.ofDays(1), Optional.empty());
    return dir;
  }

  private static IkeAuth.Certificates files(Path dir, Optional<Path> denied) {
    return new IkeAuth.Certificates(dir.resolve(ClusterCa.NODE_CERT), dir.resolve(ClusterCa.NODE_KEY),
        dir.resolve(ClusterCa.CA_CERT), denied);
  }

  private void deploy(NodeBlockLease lease, NetnsLab.Charon charon, IkeAuth.Certificates files) throws Exception {
    TunnelSettings settings = new TunnelSettings(lease.node(), lease.underlayAddress(), charon.vici(),
        lab.dir().resolve("no-secret"), Datapath.LIBIPSEC, Proposals.DEFAULT, RECONCILE,
        lab.dir().resolve(lease.node()).resolve("swanctl.conf"), TunnelSettings.DEFAULT_SECRET_GRACE, files);
    TunnelService service = new TunnelService(settings, new EventPublisher(vertx.eventBus(), lease.node(), 1));
    vertx.deployVerticle(service).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    services.put(lease.node(), service);
  }

  /** The leases, renewed now: the peer view drops a lease of another node not renewed within the grace. */
  private void publish(NodeBlockLease... leases) {
    long now = System.currentTimeMillis();
    for (NodeBlockLease l : leases) {
      ipam.publish(Addresses.LEASE_ACQUIRED,
          new LeaseEvent(new NodeBlockLease(l.node(), l.underlayAddress(), l.block(), l.epoch(), now)));
    }
  }

  private static void awaitTrue(Duration within, BooleanSupplier condition, String what) {
    NetnsLab.awaitTrue(within, condition, what);
  }

  private boolean up(String node, String peer) {
    return services.get(node).upTunnels().containsKey(PeerTunnel.connName(peer));
  }

  private static boolean ping(NetnsLab.Charon from, String to) {
    return NetnsLab.status(from.namespace(), "ping", "-c", "1", "-W", "1", to) == 0;
  }

  @Test
  void nodesWithCertificatesOfTheClusterCaEstablishTheTunnel() throws Exception {
    NetnsLab.TwoNodes nodes = lab.twoNodes("crt-");
    deploy(LEASE_A, nodes.a(), files(issue(ca, "node-a", "192.168.250.1"), Optional.empty()));
    deploy(LEASE_B, nodes.b(), files(issue(ca, "node-b", "192.168.250.2"), Optional.empty()));
    publish(LEASE_A, LEASE_B);
    awaitTrue(Duration.ofSeconds(30), () -> up("node-a", "node-b") && up("node-b", "node-a"),
        "tunnel up on both nodes\n" + nodes.a().logTail());
    awaitTrue(Duration.ofSeconds(20), () -> ping(nodes.a(), "10.128.2.1"), "ping through the tunnel");
    String log = Files.readString(nodes.b().log());
    assertTrue(log.contains("authentication of 'node-a' with ECDSA_WITH_SHA256_DER successful"),
        "node-b verified node-a's certificate signature:\n" + nodes.b().logTail());
    String rendered = Files.readString(lab.dir().resolve("node-a").resolve("swanctl.conf"));
    assertTrue(rendered.contains("auth = pubkey"), rendered);
    assertFalse(rendered.contains("secrets"), "no pre-shared key rendered:\n" + rendered);
    try (ViciSession s = nodes.a().connect()) {
      assertEquals(List.of(), s.getShared(), "no pre-shared key loaded in certificate mode");
    }
  }

  @Test
  void certificateOfAnotherCaIsRefused() throws Exception {
    NetnsLab.TwoNodes nodes = lab.twoNodes("crt-");
    Path otherCa = lab.dir().resolve("other-ca");
    ClusterCa.initCa(otherCa, "another CA", Duration.ofDays(1));
    deploy(LEASE_A, nodes.a(), files(issue(ca, "node-a", "192.168.250.1"), Optional.empty()));
    deploy(LEASE_B, nodes.b(), files(issue(otherCa, "node-b", "192.168.250.2"), Optional.empty()));
    publish(LEASE_A, LEASE_B);
    // node-a starts the tunnel; node-b verifies node-a's certificate against its (other) CA and refuses it
    awaitTrue(Duration.ofSeconds(30), () -> services.get("node-a").failures().containsKey("peer-node-b"),
        "node-a reports why the tunnel to node-b is not up\n" + nodes.a().logTail());
    assertEquals(IkeFailureLog.AUTHENTICATION_FAILED, services.get("node-a").failures().get("peer-node-b").reason());
    awaitTrue(Duration.ofSeconds(30), () -> logHas(nodes.b(), "no trusted ECDSA public key found for 'node-a'")
            || logHas(nodes.a(), "no trusted ECDSA public key found for 'node-b'"),
        "charon says the certificate has no trusted issuer\n" + nodes.b().logTail());
    assertFalse(up("node-a", "node-b") || up("node-b", "node-a"), "no tunnel with a foreign CA's certificate");
  }

  @Test
  void anotherNodesValidCertificateCannotServeThisLease() throws Exception {
    NetnsLab.TwoNodes nodes = lab.twoNodes("crt-");
    deploy(LEASE_A, nodes.a(), files(issue(ca, "node-a", "192.168.250.1"), Optional.empty()));
    publish(LEASE_A, LEASE_B);
    // node-b's address, but node-c's key and (valid, cluster CA) certificate, as node-c: not node-b's lease
    Path impostor = issue(ca, "node-c", "192.168.250.2");
    try (ViciSession s = nodes.b().connect()) {
      s.loadKey("any", Files.readString(impostor.resolve(ClusterCa.NODE_KEY)));
      s.loadCert("x509", "ca", Files.readString(impostor.resolve(ClusterCa.CA_CERT)));
      s.loadCert("x509", "none", Files.readString(impostor.resolve(ClusterCa.NODE_CERT)));
      ViciMessage child = ViciMessage.builder().list("local_ts", List.of("10.128.2.0/24"))
          .list("remote_ts", List.of("10.128.1.0/24")).list("esp_proposals", List.of(Proposals.DEFAULT.esp())).build();
      s.loadConn("impostor", ViciMessage.builder().put("version", 2)
          .list("local_addrs", List.of("192.168.250.2")).list("remote_addrs", List.of("192.168.250.1"))
          .put("encap", true).list("proposals", List.of(Proposals.DEFAULT.ike()))
          .section("local", ViciMessage.builder().put("auth", "pubkey").put("id", "node-c").build())
          .section("remote", ViciMessage.builder().put("auth", "pubkey").put("id", "node-a").build())
          .section("children", ViciMessage.builder().section("impostor", child).build()).build());
      try {
        s.initiate("impostor", "impostor", 10_000);
      } catch (dev.ipseccni.tunnel.vici.ViciCommandException refused) {
        // expected: node-a refuses
      }
    }
    awaitTrue(Duration.ofSeconds(30), () -> logHas(nodes.a(), "no matching peer config found")
            || logHas(nodes.a(), "constraint check failed: identity 'node-b' required"),
        "node-a refuses node-c's identity on node-b's lease\n" + nodes.a().logTail());
    assertFalse(up("node-a", "node-b"), "no tunnel to node-b's block with node-c's certificate");
    assertTrue(NetnsLab.establishedIkeSaId(nodes.a(), "peer-node-b").isEmpty(), "no IKE SA for node-b's lease");
  }

  @Test
  void renewedCertificateIsLoadedAndTheTunnelKeepsRunning() throws Exception {
    NetnsLab.TwoNodes nodes = lab.twoNodes("crt-");
    Path dirA = issue(ca, "node-a", "192.168.250.1");
    deploy(LEASE_A, nodes.a(), files(dirA, Optional.empty()));
    Path dirB = issue(ca, "node-b", "192.168.250.2");
    deploy(LEASE_B, nodes.b(), files(dirB, Optional.empty()));
    publish(LEASE_A, LEASE_B);
    awaitTrue(Duration.ofSeconds(30), () -> up("node-a", "node-b") && up("node-b", "node-a"), "tunnel up");
    String ikeBefore = NetnsLab.establishedIkeSaId(nodes.a(), "peer-node-b").orElseThrow();
    String oldSerial = serial(dirA);
    try (SecretRotationTest.Ping ping = SecretRotationTest.Ping.start(nodes.a().namespace(), "10.128.2.1")) {
      awaitTrue(Duration.ofSeconds(20), () -> ping.replies() >= 5, "pings answered before the renewal");
      // renewal with a new key, into the files the service reads
      ClusterCa.issue(ca, "node-a", "192.168.250.1", dirA, Duration.ofDays(1), Optional.empty());
      String newSerial = serial(dirA);
      assertFalse(newSerial.equals(oldSerial));
      awaitTrue(Duration.ofSeconds(30), () -> NetnsLab.establishedIkeSaId(nodes.a(), "peer-node-b")
              .filter(id -> !id.equals(ikeBefore)).isPresent(),
          "node-a re-authenticated the tunnel with the renewed certificate\n" + nodes.a().logTail());
      // node-a holds only the new key now: the new IKE SA authenticated with it, so with the new
      // certificate (node-b checks the signature against the certificate's public key)
      try (ViciSession s = nodes.a().connect()) {
        assertEquals(1, s.request("get-keys", ViciMessage.empty()).list("keys").size(), "the old key was unloaded");
      }
      int repliesAfter = ping.replies();
      awaitTrue(Duration.ofSeconds(20), () -> ping.replies() >= repliesAfter + 5, "pings after the renewal");
      System.out.printf("certificate renewal: %d of %d pings lost, every 50 ms%n", ping.lost(), ping.sent());
      assertTrue(ping.lost() <= 3, ping.lost() + " of " + ping.sent() + " pings lost during the renewal");
    }
    // A fresh authentication, from scratch, works with the renewed certificate alone.
    String ikeAfter = NetnsLab.establishedIkeSaId(nodes.a(), "peer-node-b").orElseThrow();
    try (ViciSession s = nodes.a().connect()) {
      s.terminate("peer-node-b");
    }
    awaitTrue(Duration.ofSeconds(30), () -> NetnsLab.establishedIkeSaId(nodes.a(), "peer-node-b")
        .filter(id -> !id.equals(ikeAfter)).isPresent(), "the tunnel comes back with the renewed certificate");

    // node-b, the side that does not start the tunnel, renews too (keeping its key): it re-authenticates itself
    String ikeBeforeB = NetnsLab.establishedIkeSaId(nodes.b(), "peer-node-a").orElseThrow();
    ClusterCa.issue(ca, "node-b", "192.168.250.2", dirB, Duration.ofDays(1), Optional.of(dirB.resolve(ClusterCa.NODE_KEY)));
    awaitTrue(Duration.ofSeconds(30), () -> NetnsLab.establishedIkeSaId(nodes.b(), "peer-node-a")
            .filter(id -> !id.equals(ikeBeforeB)).isPresent(),
        "node-b re-authenticated the tunnel after its renewal\n" + nodes.b().logTail());
    awaitTrue(Duration.ofSeconds(20), () -> ping(nodes.a(), "10.128.2.1"), "ping after node-b's renewal");
  }

  @Test
  void unusableRenewedCertificateIsLoggedAndTheIdentityInUseStays() throws Exception {
    java.util.List<String> warnings = new java.util.concurrent.CopyOnWriteArrayList<>();
    java.util.logging.Logger logger = java.util.logging.Logger.getLogger(TunnelService.class.getName());
    java.util.logging.Handler handler = new java.util.logging.Handler() {
      @Override
      public void publish(java.util.logging.LogRecord r) {
        warnings.add(r.getMessage());
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    };
    logger.addHandler(handler);
    try {
      NetnsLab.TwoNodes nodes = lab.twoNodes("crt-");
      Path dirA = issue(ca, "node-a", "192.168.250.1");
      deploy(LEASE_A, nodes.a(), files(dirA, Optional.empty()));
      deploy(LEASE_B, nodes.b(), files(issue(ca, "node-b", "192.168.250.2"), Optional.empty()));
      publish(LEASE_A, LEASE_B);
      awaitTrue(Duration.ofSeconds(30), () -> up("node-a", "node-b") && up("node-b", "node-a"), "tunnel up");
      String ikeBefore = NetnsLab.establishedIkeSaId(nodes.a(), "peer-node-b").orElseThrow();
      // a "renewal" that names another node: refused, the running identity stays
      Path other = issue(ca, "node-x", "192.168.250.1");
      Files.copy(other.resolve(ClusterCa.NODE_CERT), dirA.resolve(ClusterCa.NODE_CERT),
          java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      awaitTrue(Duration.ofSeconds(10), () -> warnings.stream().anyMatch(w -> w.startsWith("keeping IKE identity")
              && w.contains("names CN=node-x")), "the unusable certificate is logged: " + warnings);
      assertEquals(ikeBefore, NetnsLab.establishedIkeSaId(nodes.a(), "peer-node-b").orElseThrow(), "no re-authentication");
      try (ViciSession s = nodes.a().connect()) {
        assertEquals(1, s.request("get-keys", ViciMessage.empty()).list("keys").size(), "no other key loaded");
      }
      assertTrue(ping(nodes.a(), "10.128.2.1"));
    } finally {
      logger.removeHandler(handler);
    }
  }

  @Test
  void deniedNodeIsCutOffWithinAReconcileWhileTheOthersKeepTheirSas() throws Exception {
    NetnsLab.ThreeNodes nodes = lab.threeNodes("crt-");
    Path denied = lab.dir().resolve("denied-nodes");
    deploy(LEASE_A, nodes.a(), files(issue(ca, "node-a", "192.168.250.1"), Optional.of(denied)));
    deploy(LEASE_B, nodes.b(), files(issue(ca, "node-b", "192.168.250.2"), Optional.of(denied)));
    deploy(LEASE_C, nodes.c(), files(issue(ca, "node-c", "192.168.250.3"), Optional.empty()));
    publish(LEASE_A, LEASE_B, LEASE_C);
    awaitTrue(Duration.ofSeconds(40), () -> up("node-a", "node-b") && up("node-a", "node-c")
        && up("node-b", "node-c"), "full mesh of three\n" + nodes.a().logTail());
    // both ends may have started one at once: the pair keeps whichever it has
    List<String> abBefore = NetnsLab.establishedIkeSaIds(nodes.a(), "peer-node-b");
    assertFalse(abBefore.isEmpty(), "node-a's IKE SA with node-b");
    // node-c still believes in itself (its own denied list is not this one): it keeps trying
    Files.writeString(denied, "# revoked\nnode-c\n");
    try (ViciSession a = nodes.a().connect(); ViciSession b = nodes.b().connect()) {
      awaitTrue(Duration.ofSeconds(10), () -> !conns(a).contains("peer-node-c") && !conns(b).contains("peer-node-c"),
          "node-c's connections unloaded on node-a and node-b");
    }
    assertTrue(NetnsLab.establishedIkeSaId(nodes.a(), "peer-node-c").isEmpty());
    awaitTrue(Duration.ofSeconds(20), () -> !ping(nodes.a(), "10.128.3.1"), "node-c's block no longer reachable");
    assertFalse(services.get("node-a").upTunnels().containsKey("peer-node-c"));
    // node-c initiates again and again: charon on node-a accepts no identity node-c
    awaitTrue(Duration.ofSeconds(30), () -> logHas(nodes.a(), "no matching peer config found")
            || logHas(nodes.a(), "no IKE config found"),
        "node-a refuses node-c's certificate\n" + nodes.a().logTail());
    assertTrue(NetnsLab.establishedIkeSaIds(nodes.a(), "peer-node-b").stream().anyMatch(abBefore::contains),
        "node-a and node-b keep their IKE SA " + abBefore);
    assertTrue(ping(nodes.a(), "10.128.2.1"), "node-a still reaches node-b's block");
  }

  private static List<String> conns(ViciSession s) {
    try {
      return s.getConns();
    } catch (Exception e) {
      return List.of("(unreadable)");
    }
  }

  private static boolean logHas(NetnsLab.Charon charon, String text) {
    try {
      return Files.readString(charon.log()).contains(text);
    } catch (java.io.IOException e) {
      return false;
    }
  }

  private static String serial(Path dir) throws Exception {
    return NodeIdentity.load(files(dir, Optional.empty()), "node-a", "192.168.250.1", Instant.now()).serial();
  }


}

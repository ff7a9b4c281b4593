package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.bus.message.SecretAnnouncement;
import dev.ipseccni.tunnel.lab.NetnsLab;
import dev.ipseccni.tunnel.vici.ViciSession;
import io.vertx.core.Vertx;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Rotating the cluster secret on two real charons (libipsec) whose tunnel services each
 * read their own copy of the secret file, changed one node after the other as a
 * Kubernetes Secret reaches nodes: the tunnel is re-authenticated with the new pair key
 * while pods' traffic keeps flowing, and afterwards charon holds the new key only.
 * node-a starts the tunnel (its name sorts first), so both orders of rotation are run:
 * the starting side first, and last.
 */
class SecretRotationTest {
  private static final NodeBlockLease LEASE_A = new NodeBlockLease("node-a", "192.168.250.1", "10.128.1.0/24", 1,
      System.currentTimeMillis());
  private static final NodeBlockLease LEASE_B = new NodeBlockLease("node-b", "192.168.250.2", "10.128.2.0/24", 1,
      System.currentTimeMillis());
  private static final String OLD = "the-old-cluster-secret-of-the-rotation-test-0123456789";
  private static final String NEW = "the-new-cluster-secret-of-the-rotation-test-9876543210";

  private NetnsLab lab;
  private NetnsLab.Charon charonA;
  private NetnsLab.Charon charonB;
  private Vertx vertx;
  private Path secretA;
  private Path secretB;
  /** The secret id each node announced last. */
  private final Map<String, String> announced = new ConcurrentHashMap<>();

  @BeforeEach
  void twoNodes() throws Exception {
    NetnsLab.requireCharonAndRoot();
    lab = new NetnsLab();
    NetnsLab.TwoNodes nodes = lab.twoNodes("rot-");
    charonA = nodes.a();
    charonB = nodes.b();
    secretA = writeSecret(lab.dir().resolve("a.secret"), OLD);
    secretB = writeSecret(lab.dir().resolve("b.secret"), OLD);

    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
    vertx.eventBus().<Event>consumer(Addresses.TUNNEL_SECRET, m ->
        announced.put(m.body().node(), ((SecretAnnouncement) m.body().payload()).secretId()));
    deploy("node-a", "192.168.250.1", charonA, secretA);
    deploy("node-b", "192.168.250.2", charonB, secretB);
    EventPublisher ipam = new EventPublisher(vertx.eventBus(), "ipam-test", 1);
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(LEASE_A));
    ipam.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(LEASE_B));
    awaitPing();
  }

  private void deploy(String node, String underlay, NetnsLab.Charon charon, Path secret) throws Exception {
    TunnelSettings settings = new TunnelSettings(node, underlay, charon.vici(), secret, Datapath.LIBIPSEC,
        Proposals.DEFAULT, Duration.ofMillis(500), lab.dir().resolve(node).resolve("swanctl.conf"),
        TunnelSettings.DEFAULT_SECRET_GRACE);
    vertx.deployVerticle(new TunnelService(settings, new EventPublisher(vertx.eventBus(), node, 1)))
        .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
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
  void startingSideLastReauthenticatesWithTheNewKeyWithoutLosingTraffic() throws Exception {
    rotate(secretB, secretA);
  }

  @Test
  void startingSideFirstReauthenticatesOnceThePeerAnnouncesTheNewSecret() throws Exception {
    rotate(secretA, secretB);
  }

  private void rotate(Path first, Path second) throws Exception {
    String oldId = id(OLD);
    String newId = id(NEW);
    awaitTrue(() -> oldId.equals(announced.get("node-a")) && oldId.equals(announced.get("node-b")),
        "both nodes announce the old secret " + oldId);
    String ikeBefore = NetnsLab.establishedIkeSaId(charonA, "peer-node-b").orElseThrow();
    assertEquals(List.of("psk-peer-node-b"), shared(charonA), "one key per pair outside a rotation");

    try (Ping ping = Ping.start(charonA.namespace(), "10.128.2.1")) {
      awaitTrue(() -> ping.replies() >= 5, "pings answered through the tunnel before the rotation");
      writeSecret(first, NEW);
      String firstNode = first.equals(secretA) ? "node-a" : "node-b";
      awaitTrue(() -> newId.equals(announced.get(firstNode)), firstNode + " announces the new secret " + newId);
      // Mid-rotation: the rotated node still offers the old key to its old peer, and accepts both.
      NetnsLab.Charon rotated = first.equals(secretA) ? charonA : charonB;
      String peer = first.equals(secretA) ? "psk-peer-node-b" : "psk-peer-node-a";
      assertEquals(List.of(peer + "-accepted", peer).stream().sorted().toList(),
          shared(rotated).stream().sorted().toList(), "both keys held during the rotation");
      assertEquals(ikeBefore, NetnsLab.establishedIkeSaId(charonA, "peer-node-b").orElseThrow(), "no re-authentication while one side lacks the key");

      writeSecret(second, NEW);
      awaitTrue(() -> NetnsLab.establishedIkeSaId(charonA, "peer-node-b").filter(id -> !id.equals(ikeBefore)).isPresent()
              && charonHolds(charonA, List.of("psk-peer-node-b")) && charonHolds(charonB, List.of("psk-peer-node-a")),
          "node-a re-authenticated the tunnel and both dropped the old key");
      int repliesAfter = ping.replies();
      awaitTrue(() -> ping.replies() >= repliesAfter + 5, "pings answered through the re-authenticated tunnel");
      System.out.printf("rotation (%s first): %d of %d pings lost, every 50 ms%n", first.getFileName(), ping.lost(),
          ping.sent());
      assertTrue(ping.lost() <= 3, "traffic dropped for more than a moment: " + ping.lost() + " of "
          + ping.sent() + " pings (every 50 ms) lost during the rotation\n" + charonA.logTail());
    }

    String newKey = ClusterSecret.load(secretA).pairKey("node-a", "node-b").reveal();
    String oldKey = pairKey(OLD);
    for (String node : List.of("node-a", "node-b")) {
      String rendered = Files.readString(lab.dir().resolve(node).resolve("swanctl.conf"));
      assertTrue(rendered.contains(newKey), node + "'s rendered swanctl.conf holds the new pair key");
      assertFalse(rendered.contains(oldKey), node + "'s rendered swanctl.conf no longer holds the old pair key");
    }
    // A fresh authentication needs the new key: the only one left on both sides.
    String ikeAfter = NetnsLab.establishedIkeSaId(charonA, "peer-node-b").orElseThrow();
    try (ViciSession s = charonA.connect()) {
      s.terminate("peer-node-b");
    }
    try {
      // Both ends may initiate it again (seen: two IKE SAs, each authenticated with the new key)
      awaitTrue(() -> {
        List<String> ids = NetnsLab.establishedIkeSaIds(charonA, "peer-node-b");
        return !ids.isEmpty() && !ids.contains(ikeAfter);
      }, "the tunnel comes back after a terminate, authenticated with the new key only");
    } catch (AssertionError e) {
      // keep what charon said, should it fail again
      throw new AssertionError(e.getMessage() + " (IKE SA before the terminate: " + ikeAfter + ")\nnode-a's charon:\n"
          + charonA.logTail() + "\nnode-b's charon:\n" + charonB.logTail(), e);
    }
    awaitPing();
  }

  @Test
  void unusableNewSecretFileIsLoggedAndTheTunnelKeepsItsKey() throws Exception {
    List<String> warnings = new java.util.concurrent.CopyOnWriteArrayList<>();
    Logger logger = Logger.getLogger(SecretRing.class.getName());
    Handler handler = new Handler() {
      @Override
      public void publish(LogRecord r) {
        warnings.add(r.getMessage());
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    };
    logger.addHandler(handler);
    try {
      String ikeBefore = NetnsLab.establishedIkeSaId(charonA, "peer-node-b").orElseThrow();
      writeSecret(secretB, "too-short");
      awaitTrue(() -> warnings.stream().anyMatch(w -> w.contains("not reloaded") && w.contains("at least 32")),
          "the unusable secret file is reported");
      assertTrue(warnings.stream().noneMatch(w -> w.contains("too-short")), "the file's content is never logged");
      assertEquals(List.of("psk-peer-node-a"), shared(charonB), "the key in use stays");
      assertEquals(ikeBefore, NetnsLab.establishedIkeSaId(charonA, "peer-node-b").orElseThrow(), "the tunnel is not touched");
      awaitPing();
    } finally {
      logger.removeHandler(handler);
    }
  }

  // ---- helpers ----

  private static Path writeSecret(Path file, String secret) throws Exception {
    // Replaced as a Kubernetes Secret volume is: a new file moved over the old one.
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.writeString(tmp, secret + "\n");
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
    Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    return file;
  }

  private String id(String secret) throws Exception {
    Path f = writeSecret(lab.dir().resolve("probe.secret"), secret);
    return ClusterSecret.load(f).id();
  }

  private String pairKey(String secret) throws Exception {
    Path f = writeSecret(lab.dir().resolve("probe.secret"), secret);
    return ClusterSecret.load(f).pairKey("node-a", "node-b").reveal();
  }

  private static List<String> shared(NetnsLab.Charon charon) throws Exception {
    try (ViciSession s = charon.connect()) {
      return s.getShared();
    }
  }

  private static boolean charonHolds(NetnsLab.Charon charon, List<String> keys) {
    try {
      return shared(charon).equals(keys);
    } catch (Exception e) {
      return false;
    }
  }

  private void awaitPing() {
    awaitTrue(() -> NetnsLab.status(charonA.namespace(), "ping", "-c", "1", "-W", "1", "10.128.2.1") == 0,
        "ping from node-a to node-b's block through the tunnel");
  }

  private void awaitTrue(java.util.function.BooleanSupplier condition, String what) {
    try {
      NetnsLab.awaitTrue(Duration.ofSeconds(30), condition, what);
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + "\nnode-a charon:\n" + charonA.logTail() + "\nnode-b charon:\n"
          + charonB.logTail(), e);
    }
  }

  /**
   * ping every 50 ms. An echo request counts as lost when a later one was answered and it
   * never was (a late answer still counts as an answer).
   */
  static final class Ping implements AutoCloseable {
    private static final java.util.regex.Pattern SEQ = java.util.regex.Pattern.compile("icmp_seq=(\\d+)");
    private final Process process;
    private final java.util.Set<Integer> answered = ConcurrentHashMap.newKeySet();
    private final Thread reader;

    private Ping(Process process) {
      this.process = process;
      this.reader = new Thread(() -> {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
            StandardCharsets.UTF_8))) {
          for (String line = in.readLine(); line != null; line = in.readLine()) {
            java.util.regex.Matcher m = SEQ.matcher(line);
            if (line.contains("bytes from") && m.find()) {
              answered.add(Integer.parseInt(m.group(1)));
            }
          }
        } catch (java.io.IOException e) {
          // the process ended
        }
      }, "ping-reader");
      reader.setDaemon(true);
      reader.start();
    }

    static Ping start(String ns, String target) throws Exception {
      return new Ping(new ProcessBuilder("ip", "netns", "exec", ns, "ping", "-n", "-i", "0.05", target)
          .redirectErrorStream(true).start());
    }

    int replies() {
      return answered.size();
    }

    /** Requests up to the last answered one: ping numbers them from 1. */
    int sent() {
      return answered.stream().mapToInt(Integer::intValue).max().orElse(0);
    }

    int lost() {
      return sent() - answered.size();
    }

    @Override
    public void close() throws Exception {
      process.destroy();
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      }
      reader.join(5000);
    }
  }
}

package dev.ipseccni.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.ClusterBootstrap.JoinedCluster;
import io.vertx.core.Future;
import io.vertx.core.eventbus.DeliveryOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three clustered Vert.x on loopback with the event bus on mutual TLS: two agents whose
 * certificates the cluster CA signed, and an intruder that joined Hazelcast (which is not
 * encrypted) with a certificate from another CA. The two exchange messages; the intruder
 * exchanges none with either, in either direction. Keys and certificates come from the
 * openssl CLI (skipped when it is missing).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TlsEventBusTest {
  @TempDir
  static Path pki;

  final List<JoinedCluster> started = new ArrayList<>();
  JoinedCluster a;
  JoinedCluster b;
  JoinedCluster intruder;

  @BeforeAll
  void startThreeMembers() throws Exception {
    Assertions.assertTrue(run("openssl", "version") == 0, "needs the openssl CLI");
    ca("ca");
    ca("rogue-ca");
    cert("a", "ca");
    cert("b", "ca");
    cert("intruder", "rogue-ca");

    String cluster = "tls-" + UUID.randomUUID();
    int[] ports = {TestPorts.free(), TestPorts.free(), TestPorts.free()};
    List<String> members = List.of("127.0.0.1:" + ports[0], "127.0.0.1:" + ports[1], "127.0.0.1:" + ports[2]);
    a = join(cluster, "a", ports[0], members);
    b = join(cluster, "b", ports[1], members);
    // The intruder trusts the cluster CA: only its own certificate is wrong.
    intruder = join(cluster, "intruder", ports[2], members);
  }

  @AfterAll
  void stop() throws Exception {
    for (int i = started.size() - 1; i >= 0; i--) {
      await(started.get(i).vertx().close());
    }
  }

  JoinedCluster join(String cluster, String node, int port, List<String> members) throws Exception {
    ClusterSettings settings = new ClusterSettings(cluster, node, "127.0.0.1", port, 0, members, false,
        ClusterSettings.Timing.DEFAULT)
        .withTls(new ClusterSettings.Tls(pki.resolve(node + ".crt"), pki.resolve(node + ".key"), pki.resolve("ca.crt")));
    JoinedCluster joined = await(ClusterBootstrap.join(settings, List.of()));
    started.add(joined);
    return joined;
  }

  static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }


  int run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).directory(pki.toFile()).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    int exit = p.waitFor();
    if (exit != 0 && !command[1].equals("version")) {
      throw new IOException(String.join(" ", command) + " failed: " + output);
    }
    return exit;
  }

  void ca(String name) throws Exception {
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", name + ".key", "-out", name + ".crt", "-days", "2", "-subj", "/CN=" + name);
  }

  void cert(String node, String ca) throws Exception {
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", node + ".key", "-out", node + ".csr", "-subj", "/CN=" + node);
    Files.writeString(pki.resolve(node + ".ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    run("openssl", "x509", "-req", "-in", node + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
        "-CAcreateserial", "-out", node + ".crt", "-days", "2", "-extfile", node + ".ext");
  }

  /** A consumer on {@code to}, registered cluster-wide before this returns, answering its node name. */
  static String consumerOn(JoinedCluster to, String node) throws Exception {
    String address = "tls-test." + node + "." + UUID.randomUUID();
    await(to.vertx().eventBus().consumer(address, m -> m.reply(node)).completion());
    return address;
  }

  static Future<Object> ask(JoinedCluster from, String address) {
    return from.vertx().eventBus().request(address, "ping", new DeliveryOptions().setSendTimeout(5000))
        .map(m -> m.body());
  }

  @Test
  void membersWithCertificatesFromTheClusterCaExchangeMessages() throws Exception {
    assertEquals("b", await(ask(a, consumerOn(b, "b"))));
    assertEquals("a", await(ask(b, consumerOn(a, "a"))));
  }

  @Test
  void aMemberWithACertificateFromAnotherCaExchangesNothing() throws Exception {
    // It is a Hazelcast member all the same: the consumers it registers are visible to the others.
    assertEquals(3, a.hazelcast().getCluster().getMembers().size());
    String onIntruder = consumerOn(intruder, "intruder");
    ExecutionException toIntruder = assertThrows(ExecutionException.class, () -> await(ask(a, onIntruder)));
    assertTrue(toIntruder.getCause() instanceof io.vertx.core.eventbus.ReplyException, String.valueOf(toIntruder));
    String onA = consumerOn(a, "a");
    assertThrows(ExecutionException.class, () -> await(ask(intruder, onA)));
    // The cluster itself is unharmed.
    assertEquals("a", await(ask(b, onA)));
  }

  @Test
  void aPublishNeverReachesAMemberWithACertificateFromAnotherCa() throws Exception {
    // A request to the intruder fails on the way back (its reply cannot reach a) even if
    // the request got in: only a one-way publish shows whether a's client checks the
    // intruder's server certificate.
    String address = "tls-test.publish." + UUID.randomUUID();
    java.util.concurrent.atomic.AtomicInteger toIntruder = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.CompletableFuture<Object> toB = new java.util.concurrent.CompletableFuture<>();
    await(intruder.vertx().eventBus().consumer(address, m -> toIntruder.incrementAndGet()).completion());
    await(b.vertx().eventBus().consumer(address, m -> toB.complete(m.body())).completion());
    a.vertx().eventBus().publish(address, "event from a");
    assertEquals("event from a", toB.get(30, TimeUnit.SECONDS));
    // one more round trip a -> b -> a after it: the intruder's copy had as long to arrive
    assertEquals("b", await(ask(a, consumerOn(b, "b"))));
    assertEquals(0, toIntruder.get(), "a's publish reached the member whose certificate another CA signed");
  }
}

package dev.ipseccni.agent.api;

import dev.ipseccni.agent.Poll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ipseccni.agent.AgentConfig;
import dev.ipseccni.agent.NodeReadiness;
import dev.ipseccni.agent.Main;
import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.JsonRecordCodec;
import dev.ipseccni.bus.TestPorts;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.FirewallEvent;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.bus.message.PodEvent;
import dev.ipseccni.bus.message.TunnelEvent;
import dev.ipseccni.bus.message.TunnelFailure;
import io.vertx.core.Vertx;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The API on a real HTTP port over a local (non-clustered) bus: events published as the
 * services publish them must show up in /cluster, /state, /metrics, the event stream and
 * the CLI's tables.
 */
class HttpApiTest {
  @TempDir
  Path dir;

  private Vertx vertx;
  private HttpApi api;
  private EventPublisher node1;
  private EventPublisher node2;
  private int port;

  @BeforeEach
  void start() throws Exception {
    port = TestPorts.free();
    Path config = dir.resolve("agent.json");
    Files.writeString(config, """
        {"nodeName": "node1", "underlayAddress": "127.0.0.1", "services": [],
         "api": {"address": "127.0.0.1", "port": %d}}
        """.formatted(port));
    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
    node1 = new EventPublisher(vertx.eventBus(), "node1", 1);
    node2 = new EventPublisher(vertx.eventBus(), "node2", 2);
    AgentConfig agentConfig = AgentConfig.load(config);
    api = new HttpApi(agentConfig, () -> {
      Map<String, Object> s = new LinkedHashMap<>();
      s.put("node", "node1");
      s.put("underlayAddress", "127.0.0.1");
      s.put("members", List.of("node1", "node2"));
      return s;
    }, new NodeReadiness(vertx, "node1", NodeReadiness.components(agentConfig)));
    api.observe(vertx.eventBus()).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    vertx.deployVerticle(api).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private void twoNodeMeshUp() {
    node1.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(new NodeBlockLease("node1", "192.0.2.11", "10.128.1.0/24", 1, 1)));
    node2.publish(Addresses.LEASE_ACQUIRED, new LeaseEvent(new NodeBlockLease("node2", "192.0.2.12", "10.128.2.0/24", 1, 1)));
    node1.publish(Addresses.TUNNEL_UP, new TunnelEvent("node2", "10.128.2.0/24", ""));
    node2.publish(Addresses.TUNNEL_UP, new TunnelEvent("node1", "10.128.1.0/24", ""));
    node2.publish(Addresses.POD_ADDED, new PodEvent("ipsec-cni", "c0ffee", "eth0", "default", "web", "10.128.2.2/24"));
  }

  @Test
  void clusterShowsLeasesTunnelsAndPodsFromEvents() {
    twoNodeMeshUp();
    JsonNode cluster = await("mesh up in /cluster", () -> get("/cluster"),
        c -> c.path("tunnels").size() == 1 && c.path("tunnels").get(0).path("state").asText().equals("up")
            && c.path("pods").size() == 1);
    assertEquals("10.128.2.0/24", cluster.path("nodes").get(1).path("block").asText());
    assertEquals("web", cluster.path("pods").get(0).path("podName").asText());

    node2.publish(Addresses.TUNNEL_DOWN, new TunnelEvent("node1", "10.128.1.0/24", "charon does not answer"));
    await("one side down makes the link down", () -> get("/cluster"),
        c -> c.path("tunnels").get(0).path("state").asText().equals("down"));
  }

  @Test
  void stateHasOwnTunnelsFirewallAndReadiness() {
    twoNodeMeshUp();
    node1.publish(Addresses.FIREWALL_DRIFT, new FirewallEvent(List.of("IPSEC-CNI-FWD"), List.of("FORWARD jump")));
    JsonNode state = await("own tunnel and firewall repair in /state", () -> get("/state"),
        s -> s.path("tunnels").size() == 1 && s.path("firewall").path("repairs").asLong() == 1);
    assertEquals("node2", state.path("tunnels").get(0).path("peer").asText());
    assertEquals("up", state.path("tunnels").get(0).path("state").asText());
    assertTrue(state.path("ready").asBoolean(), "no services: nothing can fail");
    assertFalse(state.path("lease").path("held").asBoolean(true), "no IPAM here: no lease held");
  }

  @Test
  void metricsCountEventsPoolAndTunnels() {
    twoNodeMeshUp();
    node1.publish(Addresses.FIREWALL_DRIFT, new FirewallEvent(List.of("IPSEC-CNI-FWD"), List.of("x")));
    String metrics = awaitText("metrics", "/metrics", m -> m.contains("ipsec_cni_firewall_repairs_total"));
    assertTrue(metrics.contains("ipsec_cni_pool_addresses{block=\"10.128.2.0/24\",node=\"node2\",observer=\"node1\"} 253.0"),
        metrics);
    assertTrue(metrics.contains("ipsec_cni_tunnels{node=\"node1\",observer=\"node1\",state=\"up\"} 1.0"), metrics);
    assertTrue(metrics.contains("ipsec_cni_bus_events_total{address=\"tunnel.up\",node=\"node2\",observer=\"node1\"} 1.0"),
        metrics);
  }

  @Test
  void cniLatencyIsAHistogramByCommandAndCode() {
    // what the gateway records for each command, through Micrometer's global registry
    io.micrometer.core.instrument.Metrics.timer(AgentMetrics.CNI_COMMAND, "command", "ADD", "code", "0")
        .record(java.time.Duration.ofMillis(80));
    String metrics = awaitText("metrics", "/metrics", m -> m.contains("ipsec_cni_command_seconds_count"));
    assertTrue(metrics.contains("ipsec_cni_command_seconds_bucket{code=\"0\",command=\"ADD\",observer=\"node1\",le="),
        metrics);
  }

  @Test
  void eventStreamSendsOnlyWhatTheFilterAsks() throws Exception {
    List<JsonNode> received = new ArrayList<>();
    CompletableFuture<Void> done = CompletableFuture.runAsync(() -> {
      try {
        HttpURLConnection c = (HttpURLConnection) URI.create(base() + "/events?type=tunnel&node=node2").toURL()
            .openConnection();
        c.setReadTimeout(20_000);
        try (BufferedReader in = new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8))) {
          String line;
          while ((line = in.readLine()) != null) {
            if (line.startsWith("data: ")) {
              received.add(JsonRecordCodec.MAPPER.readTree(line.substring(6)));
              if (received.size() == 2) {
                return;
              }
            }
          }
        }
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    });
    // the stream is open once the server counts it; publish until the client has what it needs
    awaitTrue("stream delivers", () -> {
      twoNodeMeshUp();
      node2.publish(Addresses.TUNNEL_DOWN, new TunnelEvent("node1", "10.128.1.0/24", "test"));
      try {
        done.get(500, TimeUnit.MILLISECONDS);
        return true;
      } catch (java.util.concurrent.TimeoutException e) {
        return false;
      } catch (Exception e) {
        throw new AssertionError(e);
      }
    });
    for (JsonNode e : received) {
      assertEquals("node2", e.path("node").asText());
      assertTrue(e.path("address").asText().startsWith("tunnel."), e.toString());
    }
  }

  @Test
  void aTunnelThatFailsShowsCharonsReasonOnBothEndsUntilItIsUp() {
    twoNodeMeshUp();
    node1.publish(Addresses.TUNNEL_DOWN, new TunnelEvent("node2", "10.128.2.0/24", "IKE or CHILD SA down"));
    node1.publish(Addresses.TUNNEL_FAILED, new TunnelFailure("node2", "10.128.2.0/24", "authentication failed",
        "received AUTHENTICATION_FAILED notify error", 1_700_000_000_000L));
    node2.publish(Addresses.TUNNEL_FAILED, new TunnelFailure("node1", "10.128.1.0/24", "authentication failed",
        "tried 1 shared key for 'node2' - 'node1', but MAC mismatched", 1_700_000_000_100L));
    JsonNode state = await("node1's row with charon's reason", () -> get("/state"),
        s -> s.path("tunnels").get(0).path("failure").asText().equals("authentication failed"));
    JsonNode row = state.path("tunnels").get(0);
    assertEquals("down", row.path("state").asText());
    assertEquals("received AUTHENTICATION_FAILED notify error", row.path("failureDetail").asText());
    assertEquals(1_700_000_000_000L, row.path("failureMillis").asLong());
    JsonNode link = await("both ends' reasons in /cluster", () -> get("/cluster"),
        c -> c.path("tunnels").get(0).path("fromB").path("failure").asText().equals("authentication failed"));
    assertEquals("down", link.path("tunnels").get(0).path("state").asText());
    Cli tunnels = cli("tunnels", "--api", base());
    assertTrue(tunnels.out.contains("node1: authentication failed") && tunnels.out.contains("node2: authentication failed"),
        tunnels.out);

    node1.publish(Addresses.TUNNEL_UP, new TunnelEvent("node2", "10.128.2.0/24", ""));
    await("the failure gone once the tunnel is up", () -> get("/state"),
        s -> s.path("tunnels").get(0).path("state").asText().equals("up")
            && s.path("tunnels").get(0).path("failure").asText().isEmpty());
  }

  @Test
  void aDegradedServiceKeepsTheNodeReadyAndSaysWhat() throws Exception {
    int tunnelPort = TestPorts.free();
    Path config = dir.resolve("agent-tunnel.json");
    Files.writeString(config, """
        {"nodeName": "node1", "underlayAddress": "127.0.0.1", "services": ["tunnel"],
         "api": {"address": "127.0.0.1", "port": %d}}
        """.formatted(tunnelPort));
    AgentConfig withTunnel = AgentConfig.load(config);
    vertx.eventBus().consumer(Addresses.nodeStatus("node1", Addresses.TUNNEL), m -> m.reply(ComponentStatus.degraded(
        Addresses.TUNNEL, List.of("tunnel to node2 not up: authentication failed"))));
    vertx.deployVerticle(new HttpApi(withTunnel, () -> new LinkedHashMap<>(Map.of("node", "node1",
            "members", List.of("node1"))), new NodeReadiness(vertx, "node1", NodeReadiness.components(withTunnel))))
        .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    String api = "http://127.0.0.1:" + tunnelPort;
    HttpURLConnection c = (HttpURLConnection) URI.create(api + "/readyz").toURL().openConnection();
    assertEquals(200, c.getResponseCode(), "degraded is ready");
    JsonNode readyz;
    try (var in = c.getInputStream()) {
      readyz = JsonRecordCodec.MAPPER.readTree(in);
    }
    assertEquals("degraded", readyz.path("status").asText(), readyz.toString());
    assertEquals("tunnel: tunnel to node2 not up: authentication failed", readyz.path("degraded").get(0).asText());
    Cli status = cli("status", "--api", api);
    assertEquals(0, status.exit, status.out + status.err);
    assertTrue(status.out.contains("yes, DEGRADED") && status.out.contains("tunnel to node2 not up: authentication failed"),
        status.out);
  }

  @Test
  void cliPrintsTheMeshAndNodes() {
    twoNodeMeshUp();
    await("mesh up", () -> get("/cluster"), c -> c.path("tunnels").size() == 1
        && c.path("tunnels").get(0).path("state").asText().equals("up"));
    Cli tunnels = cli("tunnels", "--api", base());
    assertEquals(0, tunnels.exit, tunnels.err);
    assertTrue(tunnels.out.lines().anyMatch(l -> l.matches("node1\\s+node2\\s+UP\\s+up.*10\\.128\\.1\\.0/24 === 10\\.128\\.2\\.0/24.*")),
        tunnels.out);
    Cli nodes = cli("nodes", "--api", base(), "--output", "json");
    assertEquals(0, nodes.exit, nodes.err);
    assertTrue(nodes.out.contains("\"block\" : \"10.128.2.0/24\""), nodes.out);
    Cli pods = cli("pods", "--api", base());
    assertTrue(pods.out.contains("default/web") && pods.out.contains("10.128.2.2/24"), pods.out);
    Cli events = cli("events", "--api", base(), "--type", "tunnel.up");
    assertEquals(2, events.out.lines().count(), events.out);
    assertTrue(events.out.lines().allMatch(l -> l.contains(" tunnel.up peer=")), events.out);
  }

  @Test
  void cliSaysClearlyWhenTheAgentIsDown() throws Exception {
    int closed = TestPorts.free();
    Cli status = cli("status", "--api", "http://127.0.0.1:" + closed);
    assertEquals(3, status.exit);
    assertTrue(status.err.contains("cannot reach the ipsec-cni agent at http://127.0.0.1:" + closed
        + ": connection refused"), status.err);
    assertEquals("", status.out);
  }

  @Test
  void dashboardIsServedFromTheRoot() throws Exception {
    HttpURLConnection c = (HttpURLConnection) URI.create(base() + "/").toURL().openConnection();
    c.setInstanceFollowRedirects(true);
    assertEquals(200, c.getResponseCode());
    String page = new String(c.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(page.contains("<title>ipsec-cni mesh</title>") && page.contains("new EventSource(\"/events"), page);
  }

  @Test
  void writesAreRefused() throws Exception {
    HttpURLConnection c = (HttpURLConnection) URI.create(base() + "/state").toURL().openConnection();
    c.setRequestMethod("POST");
    assertEquals(405, c.getResponseCode());
  }

  // ---------------------------------------------------------------- helpers

  record Cli(int exit, String out, String err) {}

  /** Runs the real command line in this JVM with its output captured. */
  static synchronized Cli cli(String... args) {
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
      int exit = new picocli.CommandLine(new Main()).execute(args);
      return new Cli(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(out);
      System.setErr(err);
    }
  }

  private String base() {
    return "http://127.0.0.1:" + port;
  }

  private JsonNode get(String path) {
    try {
      return JsonRecordCodec.MAPPER.readTree(getText(path));
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }

  private String getText(String path) {
    try {
      HttpURLConnection c = (HttpURLConnection) URI.create(base() + path).toURL().openConnection();
      try (var in = c.getResponseCode() < 400 ? c.getInputStream() : c.getErrorStream()) {
        return new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }

  private String awaitText(String what, String path, java.util.function.Predicate<String> ok) {
    String[] last = {""};
    awaitTrue(what, () -> ok.test(last[0] = getText(path)));
    return last[0];
  }

  private static JsonNode await(String what, java.util.function.Supplier<JsonNode> read,
                                java.util.function.Predicate<JsonNode> ok) {
    JsonNode[] last = {null};
    try {
      awaitTrue(what, () -> ok.test(last[0] = read.get()));
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + "; last: " + last[0]);
    }
    return last[0];
  }

  static void awaitTrue(String what, BooleanSupplier condition) {
    Poll.until(what, Duration.ofSeconds(20), Duration.ofMillis(50), condition);
  }
}

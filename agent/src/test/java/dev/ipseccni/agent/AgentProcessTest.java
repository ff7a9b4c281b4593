package dev.ipseccni.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The agent as operators run it: a separate JVM, stopped by a signal. */
class AgentProcessTest {
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final ObjectMapper JSON = new ObjectMapper();
  private final List<Process> started = new ArrayList<>();

  @TempDir
  Path dir;

  @AfterEach
  void killLeftovers() {
    started.forEach(Process::destroyForcibly);
  }

  private Process agent(String node, int port, int apiPort, List<String> members) throws IOException {
    Path config = dir.resolve(node + ".json");
    Files.writeString(config, "{\"nodeName\":\"" + node + "\",\"underlayAddress\":\"127.0.0.1\",\"services\":[],"
        + "\"cluster\":{\"name\":\"agent-process-test\",\"port\":" + port + ",\"eventBusPort\":" + (port + 1)
        + ",\"members\":" + JSON.writeValueAsString(members) + "},\"api\":{\"port\":" + apiPort + "}}");
    Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), Main.class.getName(), "agent", "--config", config.toString())
        .redirectErrorStream(true).redirectOutput(dir.resolve(node + ".log").toFile()).start();
    started.add(p);
    return p;
  }

  private static JsonNode state(int apiPort) {
    try {
      HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + apiPort + "/state"))
          .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString());
      return JSON.readTree(r.body());
    } catch (IOException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  private static JsonNode awaitState(int apiPort, Predicate<JsonNode> condition, String what) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    JsonNode last = null;
    while (System.nanoTime() < deadline) {
      last = state(apiPort);
      if (last != null && condition.test(last)) {
        return last;
      }
      TimeUnit.MILLISECONDS.sleep(200); // polling interval, not synchronisation
    }
    throw new AssertionError("timed out waiting for " + what + "; last state: " + last);
  }

  private static boolean sawLeaveOf(String node, JsonNode state) {
    for (JsonNode e : state.get("recentEvents")) {
      if (e.get("address").asText().equals("member.left") && e.get("payload").get("member").asText().equals(node)) {
        return true;
      }
    }
    return false;
  }

  private static List<String> members(JsonNode state) {
    List<String> names = new ArrayList<>();
    state.get("members").forEach(m -> names.add(m.asText()));
    return names;
  }

  @Test
  void sigtermLeavesTheClusterAndExitsZero() throws Exception {
    List<String> members = List.of("127.0.0.1:25701", "127.0.0.1:25711");
    agent("node-a", 25701, 29751, members);
    Process b = agent("node-b", 25711, 29752, members);
    awaitState(29751, s -> members(s).equals(List.of("node-a", "node-b")), "node-a to see node-b");
    JsonNode onB = awaitState(29752, s -> members(s).size() == 2, "node-b to see node-a");
    assertEquals("node-b", onB.get("node").asText());

    b.destroy(); // SIGTERM
    assertTrue(b.waitFor(30, TimeUnit.SECONDS), "node-b did not exit after SIGTERM");
    assertEquals(0, b.exitValue(), Files.readString(dir.resolve("node-b.log")));
    // a clean leave is seen at once, without waiting for heartbeats to time out
    // the membership changes first; the member.left event reaches the recent events a moment later
    awaitState(29751, s -> members(s).equals(List.of("node-a")) && sawLeaveOf("node-b", s),
        "node-b to have left, with a member.left event");
    String log = Files.readString(dir.resolve("node-b.log"));
    assertTrue(log.contains("SIGTERM: leaving the cluster") && log.contains("stopped"), log);
  }

  @Test
  void badConfigExitsTwoNamingEveryProblem() throws Exception {
    Path config = dir.resolve("bad.json");
    Files.writeString(config, "{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.300\",\"network\":{\"blockPrefixLength\":8}}");
    Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), Main.class.getName(), "agent", "--config", config.toString())
        .redirectErrorStream(true).start();
    started.add(p);
    String out = new String(p.getInputStream().readAllBytes());
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    assertEquals(Main.EXIT_CONFIG, p.exitValue(), out);
    assertTrue(out.contains("config error: underlayAddress: '192.0.2.300' is not an IP address"), out);
    assertTrue(out.contains("config error: network.blockPrefixLength: /8 is not smaller than the cluster CIDR"), out);
  }

  @Test
  void misspelledNestedKeyStopsTheAgentWithExitTwo() throws Exception {
    Path config = dir.resolve("typo.json");
    Files.writeString(config, "{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"network\":{\"mtuu\":1300},"
        + "\"charon\":{\"datapath\":\"xfrm\"}}");
    Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), Main.class.getName(), "check-config", "--config",
        config.toString()).redirectErrorStream(true).start();
    started.add(p);
    String out = new String(p.getInputStream().readAllBytes());
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    assertEquals(Main.EXIT_CONFIG, p.exitValue(), out);
    assertEquals(List.of("config error: charon.datapath: 'xfrm' must be one of 'kernel', 'libipsec'",
        "config error: network.mtuu: unknown key (known: name, clusterCidr, blockPrefixLength, preferredBlock, bridge, "
            + "mtu, cniVersion)"), out.lines().toList());
  }
}

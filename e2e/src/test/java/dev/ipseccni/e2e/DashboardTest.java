package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The dashboard in a real headless Chromium, against a running 3-node lab: it shows three
 * nodes and the three tunnels between them green; when node3's charon stops, the lines to
 * node3 turn red on the page already loaded, from the event stream, without a reload;
 * when node3's charon comes back without the plugins for AES-GCM, the red lines carry the
 * reason node3 reports (charon's "algorithm not supported").
 * Screenshots of both moments are kept in e2e/target/dashboard-*.png.
 *
 * <p>The browser runs inside node1's namespace (the API is bound to the node address, which
 * only the lab can reach): chromedriver listens on that namespace's loopback and the test
 * speaks the W3C WebDriver protocol to it through {@code lab exec 1 curl}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DashboardTest {
  private static final Duration MESH_UP = Duration.ofSeconds(180);
  private static final Duration TUNNEL_DOWN = Duration.ofSeconds(90);
  private static final int DRIVER_PORT = 9515;

  private LabHarness lab;
  private Process driver;
  private String session;
  private Path profile;

  @BeforeAll
  void labAndBrowser() throws Exception {
    assertTrue(Files.isExecutable(Path.of("/usr/bin/chromium")) && Files.isExecutable(Path.of("/usr/bin/chromedriver")),
        "needs the Debian packages chromium and chromium-driver");
    lab = new LabHarness();
    // node3 is later restarted with a minimal charon (no openssl plugin): without it charon has no
    // ECDSA, so it could not load a node certificate's key at all; this view is shown with pre-shared keys
    lab.lab("up", "3", "--psk");
    String ns = System.getenv().getOrDefault("LAB_PREFIX", "lab-") + "node1";
    Path log = Path.of("target", "chromedriver.log").toAbsolutePath();
    Files.createDirectories(log.getParent());
    driver = new ProcessBuilder("ip", "netns", "exec", ns, "/usr/bin/chromedriver", "--port=" + DRIVER_PORT,
        "--allowed-ips=127.0.0.1").redirectErrorStream(true).redirectOutput(log.toFile()).start();
    LabHarness.await(Duration.ofSeconds(30), "chromedriver answers in " + ns,
        () -> webdriverOrNull("GET", "/status", null) != null);
    profile = Files.createTempDirectory("dashboard-chromium");
    ObjectNode caps = LabHarness.JSON.createObjectNode();
    ObjectNode options = caps.putObject("capabilities").putObject("alwaysMatch").put("browserName", "chrome")
        .putObject("goog:chromeOptions").put("binary", "/usr/bin/chromium");
    var args = options.putArray("args");
    for (String a : List.of("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,900",
        "--user-data-dir=" + profile)) {
      args.add(a);
    }
    JsonNode created = webdriver("POST", "/session", caps.toString());
    session = created.path("value").path("sessionId").asText();
    assertTrue(!session.isEmpty(), "no WebDriver session: " + created);
  }

  @AfterAll
  void tearDown() throws Exception {
    try {
      if (session != null) {
        webdriverOrNull("DELETE", "/session/" + session, null);
      }
    } finally {
      if (driver != null) {
        driver.destroy();
        if (!driver.waitFor(10, TimeUnit.SECONDS)) {
          driver.destroyForcibly();
        }
      }
      if (lab != null) {
        lab.close();
      }
    }
  }

  @Test
  void meshIsDrawnAndAStoppedTunnelTurnsRedWithoutReload() throws Exception {
    navigate("http://" + LabHarness.address(1) + ":" + LabHarness.API_PORT + "/");
    Map<String, String> lines = awaitLines(MESH_UP, "three nodes and three green tunnels",
        l -> l.size() == 3 && l.values().stream().allMatch("up"::equals));
    assertEquals(Map.of("node1-node2", "up", "node1-node3", "up", "node2-node3", "up"), lines);
    assertEquals(3L, script("return document.querySelectorAll('g.node').length").asLong());
    String blocks = script("return Array.from(document.querySelectorAll('g.node text.block'))"
        + ".map(t => t.textContent).join('|')").asText();
    for (int i = 1; i <= 3; i++) {
      assertTrue(blocks.contains("10.128." + i + ".0/24"), "node" + i + "'s block on the page: " + blocks);
    }
    screenshot("dashboard-mesh-up.png");
    // mark the page: a reload would lose the mark, so seeing it later proves there was none
    script("window.__sameLoad = 'yes'; return true");

    lab.lab("stop-charon", "3");
    lines = awaitLines(TUNNEL_DOWN, "node3's tunnels red",
        l -> "down".equals(l.get("node1-node3")) && "down".equals(l.get("node2-node3")));
    assertEquals("up", lines.get("node1-node2"), "the tunnel not involving node3 stays green: " + lines);
    assertEquals("yes", script("return window.__sameLoad || 'reloaded'").asText());
    String stroke = script("return getComputedStyle(document.querySelector("
        + "'line.tunnel[data-a=\"node1\"][data-b=\"node3\"]')).stroke").asText();
    assertEquals("rgb(220, 38, 38)", stroke, "a down tunnel is drawn red");
    String log = script("return document.getElementById('log').textContent").asText();
    assertTrue(log.contains("tunnel.down"), "the event log shows the tunnel.down events: " + log);
    screenshot("dashboard-node3-charon-stopped.png");

    lab.lab("start-charon", "3", "--load", TunnelFailureLabTest.NO_GCM);
    LabHarness.await(TUNNEL_DOWN, "the node1-node3 line labelled with node3's reason", () -> script(
        "const t = document.querySelector('text.failure[data-a=\"node1\"][data-b=\"node3\"]');"
            + " return t ? t.textContent : ''").asText().contains("algorithm not supported"));
    String tooltip = script("return document.querySelector('line.tunnel[data-a=\"node1\"][data-b=\"node3\"] title')"
        + ".textContent").asText();
    assertTrue(tooltip.contains("node3: algorithm not supported"), "the line's tooltip names the side: " + tooltip);
    assertEquals("yes", script("return window.__sameLoad || 'reloaded'").asText());
    assertTrue(script("return document.getElementById('log').textContent").asText().contains("tunnel.failed"),
        "the event log shows tunnel.failed");
    screenshot("dashboard-node3-charon-without-gcm.png");
  }

  // ---------------------------------------------------------------- WebDriver over lab exec curl

  private Map<String, String> awaitLines(Duration deadline, String what,
                                         java.util.function.Predicate<Map<String, String>> ok) throws Exception {
    Map<String, String>[] last = new Map[] {Map.of()};
    try {
      LabHarness.await(deadline, what, () -> ok.test(last[0] = lines()));
    } catch (AssertionError e) {
      screenshot("dashboard-failed.png");
      throw new AssertionError(e.getMessage() + "; lines on the page: " + last[0]);
    }
    return last[0];
  }

  private Map<String, String> lines() {
    JsonNode value = script("return Array.from(document.querySelectorAll('line.tunnel'))"
        + ".map(l => [l.dataset.a + '-' + l.dataset.b, l.dataset.state])");
    Map<String, String> lines = new TreeMap<>();
    value.forEach(pair -> lines.put(pair.get(0).asText(), pair.get(1).asText()));
    return lines;
  }

  private void navigate(String url) {
    webdriver("POST", "/session/" + session + "/url", LabHarness.JSON.createObjectNode().put("url", url).toString());
  }

  private JsonNode script(String js) {
    ObjectNode body = LabHarness.JSON.createObjectNode().put("script", js);
    body.putArray("args");
    return webdriver("POST", "/session/" + session + "/execute/sync", body.toString()).path("value");
  }

  private void screenshot(String name) throws IOException {
    JsonNode shot = webdriverOrNull("GET", "/session/" + session + "/screenshot", null);
    if (shot != null && shot.path("value").isTextual()) {
      Files.write(Path.of("target", name), Base64.getDecoder().decode(shot.path("value").asText()));
    }
  }

  private JsonNode webdriver(String method, String path, String body) {
    JsonNode answer = webdriverOrNull(method, path, body);
    if (answer == null) {
      throw new AssertionError("WebDriver " + method + " " + path + ": no answer from chromedriver");
    }
    if (answer.path("value").has("error")) {
      throw new AssertionError("WebDriver " + method + " " + path + ": " + answer.path("value"));
    }
    return answer;
  }

  private JsonNode webdriverOrNull(String method, String path, String body) {
    List<String> curl = new java.util.ArrayList<>(List.of("curl", "-s", "-m", "60", "-X", method,
        "-H", "content-type: application/json"));
    if (body != null) {
      curl.addAll(List.of("--data-binary", "@-"));
    }
    curl.add("http://127.0.0.1:" + DRIVER_PORT + path);
    LabHarness.Result r = lab.exec("1", Map.of(), body, curl.toArray(String[]::new));
    if (r.exitCode() != 0 || r.stdout().isBlank()) {
      return null;
    }
    try {
      return LabHarness.JSON.readTree(r.stdout());
    } catch (IOException e) {
      throw new AssertionError("chromedriver answered " + path + " with non-JSON: " + r.stdout(), e);
    }
  }
}

package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.tunnel.ClusterSecret;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The cluster secret and the per-pair keys derived from it go to charon only: they are
 * never on the wire between agents (Hazelcast and the event bus, captured on node1's
 * underlay from before the agents start), nor in the agents' logs, /state or events.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SecretLeakTest {
  private LabHarness lab;

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void noSecretOrPairKeyOnTheWireInLogsEventsOrState() throws Exception {
    lab = new LabHarness();
    lab.lab("up", "3", "--no-agent");
    Path pcap = lab.labDir().resolve("secret-leak-node1.pcap");
    List<String> published = new ArrayList<>();
    try (TunnelLab.Background tcpdump = TunnelLab.Background.start(lab, "1", "tcpdump", "-i", "eth0", "-n", "-U",
        "-s", "0", "-w", pcap.toString(), "tcp")) {
      LabHarness.await(Duration.ofSeconds(60), "tcpdump listening", () -> {
        try {
          return tcpdump.stderr().contains("listening on");
        } catch (java.io.IOException e) {
          throw new AssertionError(e);
        }
      });
      for (int node = 1; node <= 3; node++) {
        lab.lab("start-agent", String.valueOf(node));
      }
      MeshTest.awaitFullMesh(lab, 3);
      lab.lab("pod", "add", "1", "leak1");
      for (int node = 1; node <= 3; node++) {
        String api = "http://" + LabHarness.address(node) + ":" + LabHarness.API_PORT;
        published.add(lab.exec(String.valueOf(node), "curl", "-s", "-m", "5", api + "/state").stdout());
        published.add(lab.exec(String.valueOf(node), "curl", "-s", "-m", "5", api + "/events/recent?limit=1000").stdout());
        published.add(lab.exec(String.valueOf(node), "curl", "-s", "-m", "5", api + "/cluster").stdout());
        published.add(Files.readString(lab.labDir().resolve("node" + node).resolve("agent.log")));
      }
      tcpdump.stop();
    }

    Path secretFile = lab.labDir().resolve("cluster-secret");
    ClusterSecret secret = ClusterSecret.load(secretFile);
    Map<String, String> needles = new LinkedHashMap<>();
    needles.put("the cluster secret", Files.readString(secretFile).trim());
    for (int a = 1; a <= 3; a++) {
      for (int b = a + 1; b <= 3; b++) {
        needles.put("the key of node" + a + "/node" + b, secret.pairKey("node" + a, "node" + b).reveal());
      }
    }

    for (int node = 1; node <= 3; node++) {
      // the IKE private key (certificates are the lab's default): its first line of base64
      List<String> key = Files.readAllLines(lab.nodeDir(node).resolve("ike").resolve("node.key"));
      needles.put("node" + node + "'s IKE private key", key.get(1));
    }

    byte[] wire = Files.readAllBytes(pcap);
    // the capture holds the agents' bus traffic in clear: a key sent there would be found
    assertTrue(Bytes.indexOf(wire, "lease.acquired".getBytes(StandardCharsets.US_ASCII)) >= 0,
        "no event-bus traffic in the capture " + pcap);
    for (Map.Entry<String, String> needle : needles.entrySet()) {
      assertTrue(needle.getValue().length() >= 16, needle.getKey() + " is too short to search for");
      assertFalse(Bytes.indexOf(wire, needle.getValue().getBytes(StandardCharsets.US_ASCII)) >= 0,
          needle.getKey() + " crossed the underlay between the agents");
      for (String text : published) {
        assertFalse(text.contains(needle.getValue()), needle.getKey() + " appears in a log, /state or an event");
      }
    }
  }
}

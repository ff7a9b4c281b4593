package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The delegate's commands go through the gateway's spawner: the reference plugin and nsenter, for real. */
class BridgeDelegateRunTest {
  private static final Path BRIDGE = Path.of("/usr/lib/cni", BridgeDelegate.PLUGIN);

  @TempDir
  Path dir;
  private ProcessSpawner spawner;
  private BridgeDelegate delegate;

  @BeforeEach
  void start() {
    spawner = ProcessSpawner.extractedInto(dir);
    delegate = new BridgeDelegate(CniGatewaySettings.forNode("node-1", 1400, List.of()), spawner);
  }

  @AfterEach
  void stop() {
    spawner.close();
  }

  @Test
  void theReferencePluginAnswersVersionThroughTheSpawner() {
    Assertions.assertTrue(Files.isExecutable(BRIDGE), "the reference plugins are installed in /usr/lib/cni");
    BridgeDelegate.Outcome version = delegate.run(List.of(BRIDGE.toString()), Map.of("CNI_COMMAND", "VERSION"), "");
    assertTrue(version.ok(), version.stderr());
    assertTrue(new JsonObject(version.stdout()).getJsonArray("supportedVersions").contains("1.0.0"), version.stdout());
    assertTrue(spawner.pid().isPresent(), "it ran through the spawner");
  }

  @Test
  void interfaceExistsLooksIntoTheNamespaceThroughTheSpawner() {
    String ownNamespace = "/proc/self/ns/net";
    assertTrue(delegate.interfaceExists(ownNamespace, "lo"));
    assertFalse(delegate.interfaceExists(ownNamespace, "no-such-if0"));
    assertTrue(spawner.pid().isPresent(), "it ran through the spawner");
  }

  @Test
  void aFailingPluginIsAnOutcomeNotAnException() {
    BridgeDelegate.Outcome failed = delegate.run(List.of("sh", "-c",
        "echo '{\"code\":7,\"msg\":\"bad config\"}'; exit 1"), Map.of(), "");
    assertEquals(1, failed.exitCode());
    assertEquals("bridge code 7: bad config", failed.asError("ADD").details());
  }
}

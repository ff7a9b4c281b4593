package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The spawner's spawner.h says what SpawnerProtocol says: one framing, two ends. */
class SpawnerProtocolHeaderTest {
  @Test
  void cHeaderMirrorsTheJavaDefinition() throws IOException {
    Map<String, String> defines = CHeader.defines("spawner.h", "SPAWN_");
    Map<String, String> expected = new HashMap<>();
    expected.put("SPAWN_VERSION", Integer.toString(SpawnerProtocol.VERSION));
    expected.put("SPAWN_RUN", Integer.toString(SpawnerProtocol.RUN));
    expected.put("SPAWN_KILL", Integer.toString(SpawnerProtocol.KILL));
    expected.put("SPAWN_READY", Integer.toString(SpawnerProtocol.READY));
    expected.put("SPAWN_EXITED", Integer.toString(SpawnerProtocol.EXITED));
    expected.put("SPAWN_SIGNALED", Integer.toString(SpawnerProtocol.SIGNALED));
    expected.put("SPAWN_FAILED", Integer.toString(SpawnerProtocol.FAILED));
    expected.put("SPAWN_MAX_REQUEST_BYTES", Integer.toString(SpawnerProtocol.MAX_REQUEST_BYTES));
    expected.put("SPAWN_MAX_OUTPUT_BYTES", Integer.toString(SpawnerProtocol.MAX_OUTPUT_BYTES));
    assertEquals(expected, defines);
  }
}

package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.cni.plugin.PluginProtocol;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConflistTest {
  @Test
  void conflistNamesThePluginTheSocketTheMtuTheCapabilitiesThenPortmapAndLeavesNoTempFile(@TempDir Path confDir) throws IOException {
    CniGatewaySettings settings = CniGatewaySettings.forNode("n1", Path.of("/run/cg-n1/cni.sock"), 1380,
        List.of(Addresses.IPAM), List.of());
    Conflist.write(confDir, settings);
    Path written = Conflist.write(confDir, settings);
    JsonObject json = new JsonObject(Files.readString(written));
    assertEquals("1.0.0", json.getString("cniVersion"));
    assertEquals(CniGatewaySettings.DEFAULT_NETWORK, json.getString("name"));
    assertEquals(new JsonArray().add(new JsonObject().put("type", "ipsec-cni")
        .put(PluginProtocol.SOCKET_KEY, "/run/cg-n1/cni.sock").put("mtu", 1380)
        .put("capabilities", new JsonObject().put("ips", true).put("mac", true)))
        .add(new JsonObject().put("type", "portmap").put("capabilities", new JsonObject().put("portMappings", true))),
        json.getJsonArray("plugins"));
    try (Stream<Path> files = Files.list(confDir)) {
      assertEquals(List.of(written), files.toList());
    }
  }

  @Test
  void anOperatorMayChooseA110ConflistSoRuntimesSendGcAndStatus(@TempDir Path confDir) throws IOException {
    CniGatewaySettings settings = CniGatewaySettings.forNode("n1", 1400, List.of()).withConflistVersion("1.1.0");
    assertEquals("1.1.0", new JsonObject(Files.readString(Conflist.write(confDir, settings))).getString("cniVersion"));
    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> settings.withConflistVersion("0.3.1"));
    assertEquals("conflistVersion '0.3.1' is not one of [1.0.0, 1.1.0]", e.getMessage());
  }

  @Test
  void settingsTellWhatIsWrongWithThem() {
    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> CniGatewaySettings.forNode("n1", 100, List.of()));
    assertEquals("mtu 100 is outside 576..65535", e.getMessage());
  }
}

package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The result written in each version's own shape, field by field. */
class CniResultTest {
  static final CniResult RESULT = new CniResult(
      List.of(new CniResult.Interface("cni0", "aa:aa:aa:aa:aa:01", Optional.empty(), ""),
          new CniResult.Interface("veth1", "aa:aa:aa:aa:aa:02", Optional.empty(), ""),
          new CniResult.Interface("eth0", "aa:aa:aa:aa:aa:03", Optional.of(1400), "/run/netns/p")),
      List.of(new CniResult.Ip("10.128.1.2/24", "10.128.1.1", 2), new CniResult.Ip("fd00::2/64", "", 2)),
      List.of(new CniResult.Route("0.0.0.0/0", "10.128.1.1")), new JsonObject());

  @Test
  void legacyVersionsCarryIpVersionAndNoMtu() {
    for (String version : List.of("0.3.0", "0.3.1", "0.4.0")) {
      JsonObject json = RESULT.toJson(version);
      assertEquals(version, json.getString("cniVersion"));
      assertEquals(new JsonObject().put("version", "4").put("interface", 2).put("address", "10.128.1.2/24")
          .put("gateway", "10.128.1.1"), json.getJsonArray("ips").getJsonObject(0));
      assertEquals(new JsonObject().put("version", "6").put("interface", 2).put("address", "fd00::2/64"),
          json.getJsonArray("ips").getJsonObject(1));
      assertEquals(new JsonObject().put("name", "eth0").put("mac", "aa:aa:aa:aa:aa:03").put("sandbox", "/run/netns/p"),
          json.getJsonArray("interfaces").getJsonObject(2));
      assertEquals(new JsonArray().add(new JsonObject().put("dst", "0.0.0.0/0").put("gw", "10.128.1.1")),
          json.getJsonArray("routes"));
    }
  }

  @Test
  void version100DropsIpVersionAndHasNoMtu() {
    JsonObject json = RESULT.toJson("1.0.0");
    assertEquals("1.0.0", json.getString("cniVersion"));
    assertEquals(new JsonObject().put("interface", 2).put("address", "10.128.1.2/24").put("gateway", "10.128.1.1"),
        json.getJsonArray("ips").getJsonObject(0));
    assertFalse(json.getJsonArray("interfaces").getJsonObject(2).containsKey("mtu"));
  }

  @Test
  void version110CarriesTheInterfaceMtu() {
    JsonObject json = RESULT.toJson("1.1.0");
    assertEquals(new JsonObject().put("name", "eth0").put("mac", "aa:aa:aa:aa:aa:03").put("mtu", 1400)
        .put("sandbox", "/run/netns/p"), json.getJsonArray("interfaces").getJsonObject(2));
    assertEquals(new JsonObject().put("name", "cni0").put("mac", "aa:aa:aa:aa:aa:01"),
        json.getJsonArray("interfaces").getJsonObject(0));
  }

  @Test
  void readingAnyVersionAndWritingItBackIsLossless() {
    for (String version : List.of("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")) {
      JsonObject json = RESULT.toJson(version);
      assertEquals(json, CniResult.fromJson(json).toJson(version), version);
    }
  }

  @Test
  void chainedAddKeepsThePreviousResultFirstAndShiftsInterfaceIndices() {
    CniResult previous = new CniResult(List.of(new CniResult.Interface("lo", "", Optional.empty(), "/run/netns/p")),
        List.of(), List.of(), new JsonObject().put("nameservers", new JsonArray().add("10.0.0.10")));
    CniResult chained = RESULT.appendedTo(previous);
    assertEquals(4, chained.interfaces().size());
    assertEquals("lo", chained.interfaces().get(0).name());
    assertEquals(3, chained.ips().get(0).interfaceIndex());
    assertEquals(previous.dns(), chained.dns());
  }
}

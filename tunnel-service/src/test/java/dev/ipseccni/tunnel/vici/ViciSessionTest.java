package dev.ipseccni.tunnel.vici;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.tunnel.lab.NetnsLab;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The VICI client against a real charon in a namespace of its own. */
class ViciSessionTest {
  private static NetnsLab lab;
  private static NetnsLab.Charon charon;

  @BeforeAll
  static void startCharon() throws Exception {
    NetnsLab.requireCharonAndRoot();
    lab = new NetnsLab();
    String ns = lab.namespace("vici");
    charon = lab.charon(ns);
  }

  @AfterAll
  static void stop() {
    if (lab != null) {
      lab.close();
    }
  }

  static ViciMessage conn(String localTs, String remoteTs) {
    return ViciMessage.builder()
        .put("version", 2)
        .list("local_addrs", List.of("192.0.2.1"))
        .list("remote_addrs", List.of("192.0.2.2"))
        .list("proposals", List.of("aes256gcm16-prfsha256-x25519"))
        .section("local", ViciMessage.builder().put("auth", "psk").put("id", "node-a").build())
        .section("remote", ViciMessage.builder().put("auth", "psk").put("id", "node-b").build())
        .section("children", ViciMessage.builder()
            .section("node-b", ViciMessage.builder()
                .list("local_ts", List.of(localTs))
                .list("remote_ts", List.of(remoteTs))
                .list("esp_proposals", List.of("aes256gcm16"))
                .build())
            .build())
        .build();
  }

  @Test
  void versionNamesTheDaemon() throws Exception {
    try (ViciSession s = charon.connect()) {
      ViciMessage v = s.version();
      assertEquals("charon", v.value("daemon").orElseThrow());
      assertTrue(v.value("version").orElseThrow().startsWith("5."), v.toString());
    }
  }

  @Test
  void loadedConnectionIsListedAndUnloadRemovesIt() throws Exception {
    try (ViciSession s = charon.connect()) {
      s.loadShared(ViciMessage.builder().put("id", "psk-node-b").put("type", "IKE")
          .put("data", "a-test-key-of-enough-length-0123456789")
          .list("owners", List.of("node-a", "node-b")).build());
      assertTrue(s.getShared().contains("psk-node-b"), "shared key listed");

      s.loadConn("peer-node-b", conn("10.128.1.0/24", "10.128.2.0/24"));
      assertTrue(s.getConns().contains("peer-node-b"), "loaded connection listed: " + s.getConns());

      s.unloadConn("peer-node-b");
      assertFalse(s.getConns().contains("peer-node-b"), "unloaded connection gone: " + s.getConns());
      s.unloadShared("psk-node-b");
      assertFalse(s.getShared().contains("psk-node-b"));
    }
  }

  @Test
  void refusedCommandCarriesCharonsReason() throws Exception {
    try (ViciSession s = charon.connect()) {
      ViciCommandException e = assertThrows(ViciCommandException.class, () -> s.unloadConn("no-such-conn"));
      assertEquals("unload-conn", e.command());
      assertTrue(e.errmsg().contains("no-such-conn"), e.errmsg());
      // the session survives a refused command
      assertEquals("charon", s.version().value("daemon").orElseThrow());
    }
  }

  @Test
  void unknownCommandIsReportedAsSuch() throws Exception {
    try (ViciSession s = charon.connect()) {
      ViciException e = assertThrows(ViciException.class, () -> s.request("no-such-command", ViciMessage.empty()));
      assertTrue(e.getMessage().contains("does not know command"), e.getMessage());
      assertEquals("charon", s.version().value("daemon").orElseThrow());
    }
  }

  @Test
  void listSasWithNoTunnelsIsEmpty() throws Exception {
    try (ViciSession s = charon.connect()) {
      assertEquals(List.of(), s.listSas());
    }
  }

  @Test
  void stoppedCharonClosesTheSessionAndFailsCommands() throws Exception {
    String ns = lab.namespace("vici-stop");
    NetnsLab.Charon doomed = lab.charon(ns);
    ViciSession s = doomed.connect();
    java.util.concurrent.CompletableFuture<java.io.IOException> closed = new java.util.concurrent.CompletableFuture<>();
    s.onClose(closed::complete);
    lab.stop(doomed);
    java.io.IOException why = closed.get(20, java.util.concurrent.TimeUnit.SECONDS);
    assertTrue(why.getMessage().contains("closed"), why.getMessage());
    assertFalse(s.isOpen());
    assertThrows(ViciException.class, s::version);
  }
}

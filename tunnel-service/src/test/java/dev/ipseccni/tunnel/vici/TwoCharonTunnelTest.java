package dev.ipseccni.tunnel.vici;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.tunnel.lab.NetnsLab;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Two charons in two namespaces joined by a veth pair, kernel-libipsec datapath: a PSK
 * tunnel set up entirely through the VICI client carries traffic between the two blocks.
 */
class TwoCharonTunnelTest {
  private NetnsLab lab;
  private NetnsLab.Charon a;
  private NetnsLab.Charon b;

  @BeforeEach
  void twoNodes() throws Exception {
    NetnsLab.requireCharonAndRoot();
    lab = new NetnsLab();
    NetnsLab.TwoNodes nodes = lab.twoNodes("");
    a = nodes.a();
    b = nodes.b();
  }

  @AfterEach
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  private static ViciMessage conn(String self, String selfAddr, String selfBlock,
                                  String peer, String peerAddr, String peerBlock) {
    return ViciMessage.builder()
        .put("version", 2)
        .list("local_addrs", List.of(selfAddr))
        .list("remote_addrs", List.of(peerAddr))
        .put("encap", true)
        .list("proposals", List.of("aes256gcm16-prfsha256-x25519"))
        .section("local", ViciMessage.builder().put("auth", "psk").put("id", self).build())
        .section("remote", ViciMessage.builder().put("auth", "psk").put("id", peer).build())
        .section("children", ViciMessage.builder()
            .section(peer, ViciMessage.builder()
                .list("local_ts", List.of(selfBlock))
                .list("remote_ts", List.of(peerBlock))
                .list("esp_proposals", List.of("aes256gcm16-x25519"))
                .build())
            .build())
        .build();
  }

  private static void loadPeer(ViciSession s, String self, String selfAddr, String selfBlock,
                               String peer, String peerAddr, String peerBlock) throws ViciException {
    s.loadShared(ViciMessage.builder().put("id", "psk-" + peer).put("type", "IKE")
        .put("data", "0123456789abcdef0123456789abcdef-test-only")
        .list("owners", List.of(self, peer)).build());
    s.loadConn("peer-" + peer, conn(self, selfAddr, selfBlock, peer, peerAddr, peerBlock));
  }

  @Test
  void initiatedTunnelIsEstablishedSignalledAndCarriesPings() throws Exception {
    try (ViciSession sa = a.connect(); ViciSession sb = b.connect()) {
      loadPeer(sa, "node-a", "192.168.250.1", "10.128.1.0/24", "node-b", "192.168.250.2", "10.128.2.0/24");
      loadPeer(sb, "node-b", "192.168.250.2", "10.128.2.0/24", "node-a", "192.168.250.1", "10.128.1.0/24");

      BlockingQueue<ViciEvent> events = new LinkedBlockingQueue<>();
      sa.subscribe("ike-updown", events::add);
      sa.subscribe("child-updown", events::add);

      sa.initiate("node-b", "peer-node-b", 0);

      ViciEvent ikeUp = next(events, "ike-updown");
      assertTrue(ikeUp.message().isYes("up"), ikeUp.toString());
      assertTrue(ikeUp.message().section("peer-node-b").isPresent(), ikeUp.toString());
      ViciEvent childUp = next(events, "child-updown");
      assertTrue(childUp.message().isYes("up"), childUp.toString());

      List<ViciMessage> sas = sa.listSas();
      assertEquals(1, sas.size(), sas.toString());
      ViciMessage ike = sas.get(0).section("peer-node-b").orElseThrow();
      assertEquals("ESTABLISHED", ike.value("state").orElseThrow());
      ViciMessage child = ike.section("child-sas").orElseThrow().sections().values().iterator().next();
      assertEquals("INSTALLED", child.value("state").orElseThrow());
      assertEquals(List.of("10.128.1.0/24"), child.list("local-ts"));
      assertEquals(List.of("10.128.2.0/24"), child.list("remote-ts"));
      assertEquals("yes", child.value("encap").orElseThrow(), "ESP in UDP with libipsec");

      NetnsLab.awaitTrue(Duration.ofSeconds(15),
          () -> NetnsLab.status(a.namespace(), "ping", "-c", "1", "-W", "1", "10.128.2.1") == 0,
          "ping 10.128.2.1 from node a through the tunnel\n" + a.logTail());

      ViciMessage after = sa.listSas("peer-node-b").get(0).section("peer-node-b").orElseThrow()
          .section("child-sas").orElseThrow().sections().values().iterator().next();
      assertTrue(Long.parseLong(after.value("packets-out").orElseThrow()) > 0, "ping left encrypted: " + after);
      assertTrue(Long.parseLong(after.value("packets-in").orElseThrow()) > 0, "reply came back encrypted: " + after);

      sa.terminate("peer-node-b");
      ViciEvent down = next(events, "ike-updown");
      assertTrue(!down.message().isYes("up"), "down event after terminate: " + down);
      assertEquals(List.of(), sa.listSas());
    }
  }

  private static ViciEvent next(BlockingQueue<ViciEvent> events, String name) throws InterruptedException {
    while (true) {
      ViciEvent e = events.poll(20, TimeUnit.SECONDS);
      assertNotNull(e, "no " + name + " event within 20 s");
      if (e.name().equals(name)) {
        return e;
      }
    }
  }
}

package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.tunnel.vici.ViciMessage;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** charon 5.9.8's log lines (VICI log events, as swanctl --log --raw printed them here) read as failure reasons. */
class IkeFailureLogTest {

  private static ViciMessage log(String name, String sa, String msg) {
    ViciMessage.Builder b = ViciMessage.builder().put("group", "IKE").put("level", "1");
    if (name != null) {
      b.put("ikesa-name", name).put("ikesa-uniqueid", sa);
    }
    return b.put("msg", msg).build();
  }

  @Test
  void initiatorAndResponderOfAWrongKeyBothSayAuthenticationFailed() {
    IkeFailureLog reader = new IkeFailureLog();
    var initiator = reader.read(log("peer-node-b", "2", "received AUTHENTICATION_FAILED notify error")).orElseThrow();
    assertEquals("peer-node-b", initiator.connection());
    assertEquals(IkeFailureLog.AUTHENTICATION_FAILED, initiator.reason());
    var responder = reader.read(log("peer-node-a", "2",
        "tried 1 shared key for 'node-b' - 'node-a', but MAC mismatched")).orElseThrow();
    assertEquals(IkeFailureLog.AUTHENTICATION_FAILED, responder.reason());
    assertEquals("tried 1 shared key for 'node-b' - 'node-a', but MAC mismatched", responder.line());
  }

  @Test
  void aResponderThatHasNotPickedAConnectionIsKnownByThePeersAddress() {
    IkeFailureLog reader = new IkeFailureLog();
    assertEquals(Optional.empty(), reader.read(log("(unnamed)", "3",
        "received packet: from 192.168.251.1[500] to 192.168.251.2[500] (232 bytes)")));
    assertEquals(Optional.empty(), reader.read(log("(unnamed)", "3", "192.168.251.1 is initiating an IKE_SA")));
    var f = reader.read(log("(unnamed)", "3", "received proposals unacceptable")).orElseThrow();
    assertEquals("", f.connection());
    assertEquals("192.168.251.1", f.peerAddress());
    assertEquals(IkeFailureLog.NO_PROPOSAL_CHOSEN, f.reason());
  }

  @Test
  void childSaProposalsAndSilentPeersAndMissingAlgorithms() {
    IkeFailureLog reader = new IkeFailureLog();
    assertEquals(IkeFailureLog.NO_PROPOSAL_CHOSEN, reader.read(log("peer-node-b", "4",
        "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built")).orElseThrow().reason());
    assertEquals(IkeFailureLog.NO_PROPOSAL_CHOSEN, reader.read(log("peer-node-a", "4",
        "no acceptable proposal found")).orElseThrow().reason());
    assertEquals(IkeFailureLog.PEER_NOT_RESPONDING, reader.read(log("peer-node-b", "5",
        "giving up after 5 retransmits")).orElseThrow().reason());
    assertEquals(IkeFailureLog.PEER_NOT_RESPONDING, reader.read(log("peer-node-b", "5",
        "establishing IKE_SA failed, peer not responding")).orElseThrow().reason());
    assertEquals(IkeFailureLog.ALGORITHM_NOT_SUPPORTED, reader.read(log("peer-node-b", "6",
        "ENCRYPTION_ALGORITHM AES_GCM_16 (key size 256) not supported!")).orElseThrow().reason());
  }

  @Test
  void ordinaryLinesAndForeignConnectionsAreNoFailureOfOurs() {
    IkeFailureLog reader = new IkeFailureLog();
    assertTrue(reader.read(log("peer-node-b", "2", "selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"))
        .isEmpty());
    assertTrue(reader.read(log(null, null, "vici initiate CHILD_SA 'node-b'")).isEmpty());
    assertEquals("", reader.read(log("office-vpn", "9", "received AUTHENTICATION_FAILED notify error")).orElseThrow()
        .connection());
  }
}

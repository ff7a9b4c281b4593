package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class EspOverheadTest {

  @Test
  void aesGcm16RawEspOnA1500Link() {
    EspOverhead gcm = EspOverhead.worstOf("aes256gcm16-x25519", false);
    // 20 outer IPv4 + 8 SPI/sequence + 8 IV + 2 trailer + 16 ICV, padding to 4: 1446 + 54 = 1500
    assertEquals(1446, gcm.largestInner(1500));
    assertEquals(1500, 1446 + gcm.around(1446));
    assertTrue(1447 + gcm.around(1447) > 1500, "one byte more does not fit");
  }

  @Test
  void udpEncapsulationCostsEightBytes() {
    assertEquals(1438, EspOverhead.worstOf("aes256gcm16", true).largestInner(1500));
  }

  @Test
  void jumboAndSmallLinks() {
    EspOverhead gcm = EspOverhead.worstOf("aes256gcm16-x25519", false);
    assertEquals(8946, gcm.largestInner(9000));
    assertEquals(1346, gcm.largestInner(1400));
    for (int link = 1280; link <= 9000; link++) {
      int inner = gcm.largestInner(link);
      assertTrue(inner + gcm.around(inner) <= link && inner + 1 + gcm.around(inner + 1) > link, "link " + link);
    }
  }

  @Test
  void paddingToTheBlockOfCbc() {
    EspOverhead cbc = EspOverhead.worstOf("aes128-sha256-modp2048", false);
    // room 1500 - 20 - 8 - 16 IV - 16 ICV = 1440, a multiple of 16, less the 2-byte trailer
    assertEquals(1438, cbc.largestInner(1500));
    assertEquals(1500, 1438 + cbc.around(1438));
    assertEquals(1500, 1423 + cbc.around(1423), "1423 + 2 is padded up to 1440 too");
  }

  @Test
  void shorterIcvsLeaveMoreRoom() {
    assertEquals(1450, EspOverhead.worstOf("aes128gcm12", false).largestInner(1500));
    assertEquals(1446, EspOverhead.worstOf("chacha20poly1305", false).largestInner(1500));
  }

  @Test
  void theWorstProposalOfAListCounts() {
    EspOverhead worst = EspOverhead.worstOf("aes256gcm12-x25519,aes256-sha512", false);
    assertEquals("aes256-sha512", worst.proposal());
  }

  @Test
  void unknownAlgorithmsAreRefused() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> EspOverhead.worstOf("serpent256", false));
    assertTrue(e.getMessage().contains("serpent256"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> EspOverhead.worstOf("aes256", false), "CBC needs an integrity algorithm");
  }

  @Test
  void podMtuFollowsTheDatapath() {
    assertEquals(1446, PodMtu.fromUnderlay("eth0", 1500, Proposals.DEFAULT, Datapath.KERNEL).value());
    assertEquals(8946, PodMtu.fromUnderlay("eth0", 9000, Proposals.DEFAULT, Datapath.KERNEL).value());
    assertEquals(1346, PodMtu.fromUnderlay("eth0", 1400, Proposals.DEFAULT, Datapath.KERNEL).value());
    PodMtu libipsec = PodMtu.fromUnderlay("eth0", 9000, Proposals.DEFAULT, Datapath.LIBIPSEC);
    assertEquals(PodMtu.LIBIPSEC_TUN_MTU, libipsec.value(), libipsec.derivation());
    assertTrue(libipsec.derivation().contains("capped"), libipsec.derivation());
    assertEquals(1338, PodMtu.fromUnderlay("eth0", 1400, Proposals.DEFAULT, Datapath.LIBIPSEC).value());
    assertEquals("network.mtu", PodMtu.explicit(1300).derivation());
    assertThrows(IllegalArgumentException.class, () -> PodMtu.fromUnderlay("eth0", 600, Proposals.DEFAULT, Datapath.KERNEL));
  }
}

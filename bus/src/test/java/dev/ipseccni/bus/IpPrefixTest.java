package dev.ipseccni.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.math.BigInteger;
import org.junit.jupiter.api.Test;

class IpPrefixTest {

  @Test
  void addressLiteralsParseToTheirNumber() {
    assertEquals(BigInteger.valueOf(0x0A800109L), IpPrefix.parseAddress("10.128.1.9"));
    assertEquals(BigInteger.valueOf(0xFFFFFFFFL), IpPrefix.parseAddress("255.255.255.255"));
    assertEquals(BigInteger.valueOf(0x0A800000L), IpPrefix.parseAddress("10.128.0.0"), "a lone 0 is no leading zero");
    assertEquals(BigInteger.ONE, IpPrefix.parseAddress("::1"));
    assertEquals(9, IpPrefix.parse("10.128.1.0/24").offsetOf("10.128.1.9"));
  }

  @Test
  void dottedQuadOutOfRangeOrANameIsNotAnAddress() {
    // Runtimes send these (CNI_ARGS IP=): each must be refused. (That a bad dotted quad is refused without a
    // resolver lookup is by construction in literalBytes; this test cannot see the resolver.)
    for (String bad : new String[] {"999.1.1.1", "10.128.1.256", "1.2.3.4444", "10.128.1", "localhost", "10.128.1.x",
        "fd00::g", "", "010.128.1.9", "10.128.01.9", "10.128.1.09", "10.128.1.00"}) {
      assertThrows(IllegalArgumentException.class, () -> IpPrefix.parseAddress(bad), bad);
    }
  }
}

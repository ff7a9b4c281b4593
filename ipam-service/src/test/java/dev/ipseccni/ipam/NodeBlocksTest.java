package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NodeBlocksTest {

  @Test
  void defaultCidrCutsInto256BlocksOf24() {
    NodeBlocks blocks = NodeBlocks.of("10.128.0.0/16", 24);
    assertEquals(256, blocks.blockCount());
    assertEquals("10.128.0.0/24", blocks.block(0).toString());
    assertEquals("10.128.7.0/24", blocks.block(7).toString());
    assertEquals("10.128.255.0/24", blocks.block(255).toString());
    assertEquals(253, blocks.podCapacity());
    assertEquals(254, blocks.lastPodOffset());
  }

  @Test
  void gatewayIsTheBlocksFirstAddress() {
    assertEquals("10.128.3.1", NodeBlocks.gateway(IpPrefix.parse("10.128.3.0/24")));
  }

  @Test
  void smallerBlocksAreCutInOrder() {
    NodeBlocks blocks = NodeBlocks.of("10.128.0.0/16", 26);
    assertEquals(1024, blocks.blockCount());
    assertEquals("10.128.0.192/26", blocks.block(3).toString());
    assertEquals(61, blocks.podCapacity());
    assertEquals(3, blocks.clusterCidr().indexOf(IpPrefix.parse("10.128.0.192/26")));
  }

  @Test
  void isBlockRequiresInsideAndSameLength() {
    NodeBlocks blocks = NodeBlocks.of("10.128.0.0/16", 24);
    assertTrue(blocks.isBlock(IpPrefix.parse("10.128.9.0/24")));
    assertFalse(blocks.isBlock(IpPrefix.parse("10.129.9.0/24")));
    assertFalse(blocks.isBlock(IpPrefix.parse("10.128.9.0/25")));
    assertFalse(blocks.isBlock(IpPrefix.parse("fd00::/120")));
  }

  @Test
  void blockMustBeLongerThanTheCidrAndLeaveRoomForPods() {
    assertThrows(IllegalArgumentException.class, () -> NodeBlocks.of("10.128.0.0/16", 16));
    assertThrows(IllegalArgumentException.class, () -> NodeBlocks.of("10.128.0.0/16", 31));
    assertThrows(IllegalArgumentException.class, () -> NodeBlocks.of("8.0.0.0/6", 7));
    assertThrows(IllegalArgumentException.class, () -> NodeBlocks.of("10.0.0.0/8", 30));
  }

  @Test
  void prefixWithHostBitsIsRejected() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> IpPrefix.parse("10.128.1.5/24"));
    assertTrue(e.getMessage().contains("host bits"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> IpPrefix.parse("10.128.1.0"));
    assertThrows(IllegalArgumentException.class, () -> IpPrefix.parse("node1.example/24"));
  }

  @Test
  void ipv6UsesTheSameMath() {
    NodeBlocks blocks = NodeBlocks.of("fd00:10:128::/104", 120);
    assertEquals(65536, blocks.blockCount());
    assertEquals("fd00:10:128::100/120", blocks.block(1).toString());
    assertEquals("fd00:10:128::101", NodeBlocks.gateway(blocks.block(1)));
    assertEquals(253, blocks.podCapacity());
    assertEquals(2, blocks.block(1).offsetOf("fd00:10:128::102"));
  }

  @Test
  void offsetOfRejectsAddressOutsideThePrefix() {
    IpPrefix block = IpPrefix.parse("10.128.1.0/24");
    assertEquals(200, block.offsetOf("10.128.1.200"));
    assertThrows(IllegalArgumentException.class, () -> block.offsetOf("10.128.2.1"));
  }
}

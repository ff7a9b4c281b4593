package dev.ipseccni.e2e;

import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The pod MTU follows the underlay: two kernel-mode nodes whose links (taps, bridge, eth0) have
 * a jumbo and a small MTU; the 1500 case runs on {@link KernelDatapathTest}'s lab. Each link MTU
 * is its own lab: the agents derive the MTU once, at start.
 */
class KernelMtuTest {

  @ParameterizedTest(name = "link MTU {0}")
  @ValueSource(ints = {9000, 1400})
  void podsGetTheLinkMtuLessEspAndFullSizedPacketsCrossTheTunnel(int linkMtu) throws Exception {
    try (LabHarness lab = new LabHarness()) {
      lab.lab(Map.of("LAB_UNDERLAY_MTU", String.valueOf(linkMtu)), "up", "2", "--kernel");
      lab.lab("pod", "add", "1", "mtu1");
      lab.lab("pod", "add", "2", "mtu2");
      TunnelLab.serveName(lab, "mtu2");
      KernelLab.awaitFullMesh(lab, 2);
      KernelLab.proveMtu(lab, 1, "mtu1", "mtu2", TunnelLab.podAddress(lab, "mtu2"), linkMtu);
    }
  }
}

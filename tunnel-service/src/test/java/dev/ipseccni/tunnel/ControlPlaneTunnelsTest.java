package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.tunnel.vici.ViciMessage;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Which control IKE SAs an ike-updown event names as opened with a certificate away from its address. */
class ControlPlaneTunnelsTest {

  private static ViciMessage sa(String uniqueId, String remoteId, String remoteHost) {
    return ViciMessage.builder().put("uniqueid", uniqueId).put("remote-id", remoteId).put("remote-host", remoteHost)
        .put("state", "ESTABLISHED").build();
  }

  @Test
  void aControlSaWhosePeerIdentityIsNotItsAddressIsMisplaced() {
    ViciMessage event = ViciMessage.builder().put("up", true)
        .section("control-any", sa("7", "192.0.2.13", "198.51.100.10")).build();
    Map<String, String> misplaced = ControlPlaneTunnels.misplaced(event);
    assertEquals(java.util.Set.of("7"), misplaced.keySet());
    assertTrue(misplaced.get("7").contains("198.51.100.10") && misplaced.get("7").contains("'192.0.2.13'"),
        misplaced.get("7"));
  }

  @Test
  void aNodeFromItsOwnAddressAndThePodTunnelsAreLeftAlone() {
    ViciMessage event = ViciMessage.builder().put("up", true)
        .section("control-any", sa("1", "192.0.2.12", "192.0.2.12"))
        .section("control-192.0.2.13", sa("2", "2001:db8::1", "2001:db8:0:0::1"))
        .section("peer-node3", sa("3", "node3", "192.0.2.13"))
        .build();
    assertEquals(Map.of(), ControlPlaneTunnels.misplaced(event));
  }

  @Test
  void anIdentityThatIsAName() {
    ViciMessage event = ViciMessage.builder().put("up", true)
        .section("control-any", sa("4", "node3", "192.0.2.13")).build();
    assertEquals(java.util.Set.of("4"), ControlPlaneTunnels.misplaced(event).keySet(),
        "a name is no address: the control plane's identities are addresses");
  }
}

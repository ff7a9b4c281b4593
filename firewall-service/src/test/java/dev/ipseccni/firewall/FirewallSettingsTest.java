package dev.ipseccni.firewall;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class FirewallSettingsTest {

  @Test
  void defaultsAreValid() {
    assertEquals(List.of(), FirewallSettings.defaults("node-1").errors());
    // Kubernetes node names are often fully qualified host names
    assertEquals(List.of(), FirewallSettings.defaults("node-1.example.org").errors());
    assertEquals(List.of(), FirewallSettings.defaults("node-1").withOwnBlock("10.128.7.0/24").errors());
  }

  @Test
  void everyBadValueIsNamed() {
    FirewallSettings bad = new FirewallSettings("node 1", "a bridge", "10.129.1.0/24", "10.128.0.0/16",
        Datapath.LIBIPSEC, "", Duration.ofMillis(10), List.of(), "", "iptables-save", List.of(), List.of(5701, 70000));

    List<String> errors = bad.errors();

    assertEquals(7, errors.size(), errors.toString());
    assertTrue(errors.get(0).contains("node 1"));
    assertTrue(errors.get(1).contains("a bridge"));
    assertTrue(errors.get(2).contains("not inside the cluster CIDR"));
    assertTrue(errors.get(3).contains("tunnel interface"));
    assertTrue(errors.get(4).contains("check interval"));
    assertTrue(errors.get(5).contains("iptables-restore"));
    assertTrue(errors.get(6).contains("control-plane port 70000"));
  }

  @Test
  void malformedNetworksAreRejected() {
    assertTrue(FirewallSettings.defaults("n").withOwnBlock("10.128.1.0").errors().get(0).contains("own block"));
    FirewallSettings cluster = new FirewallSettings("n", "cni0", "", "10.128.0.0/33", Datapath.KERNEL, "ipsec0",
        Duration.ofSeconds(5), List.of(), "iptables-restore", "iptables-save", List.of(), List.of());
    assertTrue(cluster.errors().get(0).contains("cluster CIDR"));
  }

  @Test
  void cidrIsNormalisedAndContains() {
    Ipv4Cidr cluster = Ipv4Cidr.parse("10.128.5.9/16").orElseThrow();
    assertEquals("10.128.0.0/16", cluster.toString());
    assertTrue(cluster.contains(Ipv4Cidr.parse("10.128.200.0/24").orElseThrow()));
    assertTrue(!cluster.contains(Ipv4Cidr.parse("10.0.0.0/8").orElseThrow()));
    assertTrue(Ipv4Cidr.parse("300.1.1.1/8").isEmpty());
  }
}

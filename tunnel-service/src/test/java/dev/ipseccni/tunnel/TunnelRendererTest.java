package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.tunnel.vici.ViciMessage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TunnelRendererTest {
  @TempDir
  Path dir;

  private ClusterSecret secret;
  private final NodeBlockLease nodeA = new NodeBlockLease("node-a", "192.168.250.1", "10.128.1.0/24", 1, 0);
  private final NodeBlockLease nodeB = new NodeBlockLease("node-b", "192.168.250.2", "10.128.2.0/24", 1, 0);

  @BeforeEach
  void secret() throws Exception {
    Path f = dir.resolve("secret");
    Files.writeString(f, "cluster-secret-for-rendering-tests-0123456789");
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
    secret = ClusterSecret.load(f);
  }

  private TunnelRenderer renderer(String node, String underlay, Datapath datapath) {
    return new TunnelRenderer(TunnelSettings.of(node, underlay, dir.resolve("vici"), dir.resolve("secret"),
        datapath, dir.resolve("swanctl.conf")));
  }

  @Test
  void withCertificatesThePeerMustBeTheLeasesNodeSignedByTheClusterCa() throws Exception {
    Path ca = dir.resolve("ca");
    dev.ipseccni.tunnel.identity.ClusterCa.initCa(ca, "test CA", java.time.Duration.ofDays(1));
    Path pki = dir.resolve("pki");
    dev.ipseccni.tunnel.identity.ClusterCa.issue(ca, "node-a", "192.168.250.1", pki, java.time.Duration.ofDays(1),
        java.util.Optional.empty());
    var files = new dev.ipseccni.tunnel.identity.IkeAuth.Certificates(pki.resolve("node.crt"), pki.resolve("node.key"),
        pki.resolve("ca.crt"), java.util.Optional.empty());
    var identity = dev.ipseccni.tunnel.identity.NodeIdentity.load(files, "node-a", "192.168.250.1",
        java.time.Instant.now());
    TunnelRenderer r = renderer("node-a", "192.168.250.1", Datapath.LIBIPSEC);
    PeerTunnel t = r.desired(nodeA, List.of(nodeA, nodeB)).get("peer-node-b");

    ViciMessage conn = r.connection(t, identity);
    ViciMessage local = conn.section("local").orElseThrow();
    ViciMessage remote = conn.section("remote").orElseThrow();
    assertEquals("pubkey", local.value("auth").orElseThrow());
    assertEquals("node-a", local.value("id").orElseThrow());
    assertEquals(List.of(), local.list("certs"), "charon picks the newest loaded certificate for the id");
    assertEquals("pubkey", remote.value("auth").orElseThrow());
    assertEquals("node-b", remote.value("id").orElseThrow(), "only node-b's certificate serves node-b's block");
    assertEquals(List.of(identity.caPem()), remote.list("cacerts"));

    String conf = r.swanctlConf(List.of(t), files);
    assertTrue(conf.contains(pki.resolve("node.crt").toString()), conf);
    assertTrue(conf.contains("cacerts = " + pki.resolve("ca.crt")), conf);
    assertFalse(conf.contains("secrets {"), conf);
    assertFalse(conf.contains("PRIVATE KEY"), "the key is named, never copied:\n" + conf);
  }

  @Test
  void onePeerGivesOneConnectionBlockToBlock() {
    TunnelRenderer r = renderer("node-a", "192.168.250.1", Datapath.LIBIPSEC);
    Map<String, PeerTunnel> desired = r.desired(nodeA, List.of(nodeA, nodeB));
    assertEquals(Set.of("peer-node-b"), desired.keySet(), "own lease is no peer");

    ViciMessage conn = r.connection(desired.get("peer-node-b"));
    assertEquals("2", conn.value("version").orElseThrow());
    assertEquals(List.of("192.168.250.1"), conn.list("local_addrs"));
    assertEquals(List.of("192.168.250.2"), conn.list("remote_addrs"));
    assertEquals("yes", conn.value("encap").orElseThrow(), "libipsec needs ESP in UDP");
    assertEquals(List.of(Proposals.DEFAULT.ike()), conn.list("proposals"));
    assertEquals("node-a", conn.section("local").orElseThrow().value("id").orElseThrow());
    assertEquals("node-b", conn.section("remote").orElseThrow().value("id").orElseThrow());
    ViciMessage child = conn.section("children").orElseThrow().section("peer-node-b").orElseThrow();
    assertEquals(List.of("10.128.1.0/24"), child.list("local_ts"));
    assertEquals(List.of("10.128.2.0/24"), child.list("remote_ts"));
    assertEquals("tunnel", child.value("mode").orElseThrow());
    assertEquals("start", child.value("start_action").orElseThrow(), "node-a < node-b initiates");
  }

  @Test
  void kernelDatapathTrapsOnBothSidesAndDoesNotForceEncap() {
    TunnelRenderer r = renderer("node-b", "192.168.250.2", Datapath.KERNEL);
    PeerTunnel t = r.desired(nodeB, List.of(nodeA)).get("peer-node-a");
    ViciMessage conn = r.connection(t);
    assertEquals("no", conn.value("encap").orElseThrow());
    assertEquals("trap", conn.section("children").orElseThrow().section("peer-node-a").orElseThrow()
        .value("start_action").orElseThrow(), "node-b waits for node-a, but traffic to node-a's block starts the tunnel");
    TunnelRenderer a = renderer("node-a", "192.168.250.1", Datapath.KERNEL);
    PeerTunnel ta = a.desired(nodeA, List.of(nodeB)).get("peer-node-b");
    assertEquals("trap", a.connection(ta).section("children").orElseThrow().section("peer-node-b").orElseThrow()
        .value("start_action").orElseThrow(), "the initiator traps too; the reconciler starts it");
  }

  @Test
  void libipsecHigherNameWaits() {
    TunnelRenderer r = renderer("node-b", "192.168.250.2", Datapath.LIBIPSEC);
    PeerTunnel t = r.desired(nodeB, List.of(nodeA)).get("peer-node-a");
    assertEquals("none", r.connection(t).section("children").orElseThrow().section("peer-node-a").orElseThrow()
        .value("start_action").orElseThrow());
  }

  @Test
  void bothSidesLoadTheSameKeyForThePair() {
    PeerTunnel ab = renderer("node-a", "192.168.250.1", Datapath.LIBIPSEC).desired(nodeA, List.of(nodeB))
        .get("peer-node-b");
    PeerTunnel ba = renderer("node-b", "192.168.250.2", Datapath.LIBIPSEC).desired(nodeB, List.of(nodeA))
        .get("peer-node-a");
    String keyAb = renderer("node-a", "192.168.250.1", Datapath.LIBIPSEC).sharedKeys(ab, PairKeys.of(secret)).get(0).value("data").orElseThrow();
    String keyBa = renderer("node-b", "192.168.250.2", Datapath.LIBIPSEC).sharedKeys(ba, PairKeys.of(secret)).get(0).value("data").orElseThrow();
    assertEquals(keyAb, keyBa);
  }

  @Test
  void nodeNamesWithDotsGetDistinctSafeConnectionNames() {
    String a = PeerTunnel.connName("ip-10-0-0-1.ec2.internal");
    String b = PeerTunnel.connName("ip-10-0-0-1_ec2_internal");
    assertTrue(a.matches("peer-[A-Za-z0-9_-]+"), a);
    assertNotEquals(a, b);
  }

  @Test
  void swanctlConfHasOneKeyPerLineAndBalancedSections() {
    TunnelRenderer r = renderer("node-a", "192.168.250.1", Datapath.LIBIPSEC);
    Map<String, PeerTunnel> desired = r.desired(nodeA, List.of(nodeB));
    String conf = r.swanctlConf(desired.values(), t -> PairKeys.of(secret));
    int depth = 0;
    for (String line : conf.split("\n")) {
      assertTrue(line.chars().filter(c -> c == '=').count() <= 1, "one key per line: " + line);
      if (line.endsWith("{")) {
        depth++;
      } else if (line.trim().equals("}")) {
        depth--;
      }
      assertTrue(depth >= 0, line);
    }
    assertEquals(0, depth);
    assertTrue(conf.contains("      local_ts = 10.128.1.0/24\n"), conf);
    String key = r.sharedKeys(desired.get("peer-node-b"), PairKeys.of(secret)).get(0).value("data").orElseThrow();
    assertTrue(conf.indexOf(key) > conf.indexOf("secrets {"), "the key appears only in the secrets section");
  }

  @Test
  void thousandPeersRenderAndDiffCorrectly() {
    NodeBlockLease own = new NodeBlockLease("node-0000", "172.16.0.1", "10.128.0.0/24", 1, 0);
    List<NodeBlockLease> leases = new ArrayList<>();
    for (int i = 1; i <= 1000; i++) {
      leases.add(new NodeBlockLease(String.format("node-%04d", i), "172.16." + (i / 250) + "." + (i % 250 + 2),
          "10." + (128 + i / 256) + "." + (i % 256) + ".0/24", 1, 0));
    }
    leases.add(own);
    TunnelRenderer r = renderer("node-0000", "172.16.0.1", Datapath.LIBIPSEC);

    Map<String, PeerTunnel> desired = r.desired(own, leases);
    assertEquals(1000, desired.size());
    String conf = r.swanctlConf(desired.values(), t -> PairKeys.of(secret));
    assertEquals(1000, conf.split("\n      peer-node-\\d{4} \\{").length - 1, "one child section per peer");

    TunnelPlan first = TunnelPlan.between(desired, Map.of(), Set.of("other-admin-conn"));
    assertEquals(1000, first.load().size());
    assertEquals(List.of(), first.unload(), "connections not ours are left alone");

    Map<String, PeerTunnel> applied = new HashMap<>(desired);
    Set<String> inCharon = new HashSet<>(desired.keySet());
    inCharon.add("other-admin-conn");
    assertTrue(TunnelPlan.between(desired, applied, inCharon).isEmpty(), "nothing to do when in step");

    List<NodeBlockLease> renewed = leases.stream().map(l -> l.renewedAt(99)).toList();
    assertTrue(TunnelPlan.between(r.desired(own, renewed), applied, inCharon).isEmpty(), "renewal is no change");

    List<NodeBlockLease> moved = new ArrayList<>(leases);
    moved.set(499, new NodeBlockLease("node-0500", "172.16.9.9", leases.get(499).block(), 2, 0));
    moved.remove(9); // node-0010 is gone
    TunnelPlan change = TunnelPlan.between(r.desired(own, moved), applied, inCharon);
    assertEquals(List.of("peer-node-0500"), change.load().stream().map(PeerTunnel::connName).toList());
    assertEquals("172.16.9.9", change.load().get(0).peerAddress());
    assertEquals(List.of("peer-node-0010"), change.unload());

    inCharon.remove("peer-node-0700");
    assertEquals(List.of("peer-node-0700"),
        TunnelPlan.between(desired, applied, inCharon).load().stream().map(PeerTunnel::connName).toList(),
        "a connection charon lost is loaded again");
  }

  @Test
  void keysNeverAppearInTunnelToString() {
    TunnelRenderer r = renderer("node-a", "192.168.250.1", Datapath.LIBIPSEC);
    PeerTunnel t = r.desired(nodeA, List.of(nodeB)).get("peer-node-b");
    String key = r.sharedKeys(t, PairKeys.of(secret)).get(0).value("data").orElseThrow();
    assertFalse(t.toString().contains(key));
    assertFalse(r.connection(t).toString().contains(key));
  }
}

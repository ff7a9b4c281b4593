package dev.ipseccni.firewall;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Packets, not rules: a node namespace with cni0 (10.128.1.1/24) and a pod on a veth into it, and
 * an underlay peer namespace that the node's default route points at. No tunnel exists, exactly
 * the situation after charon died. What crosses the underlay is counted in the peer, where it
 * arrives off the wire.
 */
class PlaintextGuardDatapathTest {
  private static final Ipv4Cidr BLOCK = Ipv4Cidr.parse("10.128.1.0/24").orElseThrow();
  private static final String REMOTE_POD = "10.128.2.2";
  private static final String OUTSIDE = "203.0.113.10";
  private static final String NODE_UNDERLAY = "198.51.100.1";

  private Netns node;
  private Netns pod;
  private Netns peer;
  private FirewallSettings settings;

  @BeforeEach
  void lab() {
    node = Netns.fresh("fw-dp-node");
    pod = Netns.fresh("fw-dp-pod");
    peer = Netns.fresh("fw-dp-peer");
    node.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
    node.run("ip", "link", "add", "cni0", "type", "bridge");
    node.run("ip", "addr", "add", "10.128.1.1/24", "dev", "cni0");
    node.run("ip", "link", "set", "cni0", "up");
    node.run("ip", "link", "add", "fw-pod1", "type", "veth", "peer", "name", "eth0", "netns", pod.name);
    node.run("ip", "link", "set", "fw-pod1", "master", "cni0", "up");
    pod.run("ip", "addr", "add", "10.128.1.2/24", "dev", "eth0");
    pod.run("ip", "link", "set", "eth0", "up");
    pod.run("ip", "route", "add", "default", "via", "10.128.1.1");
    node.run("ip", "link", "add", "fw-ul", "type", "veth", "peer", "name", "fw-ul-peer", "netns", peer.name);
    node.run("ip", "addr", "add", NODE_UNDERLAY + "/24", "dev", "fw-ul");
    node.run("ip", "link", "set", "fw-ul", "up");
    node.run("ip", "route", "add", "default", "via", "198.51.100.2");
    peer.run("ip", "addr", "add", "198.51.100.2/24", "dev", "fw-ul-peer");
    peer.run("ip", "link", "set", "fw-ul-peer", "up");
    peer.run("ip", "addr", "add", OUTSIDE + "/32", "dev", "lo");
    peer.restore("""
        *raw
        -A PREROUTING -s 10.128.0.0/16 -m comment --comment pod-source
        -A PREROUTING -s 198.51.100.1/32 -d 203.0.113.10/32 -p icmp -m comment --comment masqueraded
        COMMIT
        """);
    settings = FirewallSettings.defaults("node1").withCommandPrefix(node.prefix());
  }

  @AfterEach
  void removeLab() {
    pod.close();
    node.close();
    peer.close();
  }

  @Test
  void plaintextToRemotePodIsDropped() throws Exception {
    pod.status("ping", "-c", "2", "-i", "0.2", "-W", "1", REMOTE_POD);
    assertTrue(peer.packets("raw", "PREROUTING", "pod-source") >= 2, "without the guard the pod's packets leak");
    peer.run("iptables", "-t", "raw", "-Z");

    new NodeFirewall(settings).enforce(Optional.of(BLOCK));
    int status = pod.status("ping", "-c", "3", "-i", "0.2", "-W", "1", REMOTE_POD);

    assertNotEquals(0, status);
    assertEquals(0, peer.packets("raw", "PREROUTING", "pod-source"));
    assertTrue(node.packets("filter", "IPSEC-CNI-FWD", "unencrypted to the cluster") >= 3);
  }

  @Test
  void guardHoldsBeforeTheOwnBlockIsKnown() throws Exception {
    new NodeFirewall(settings).enforce(Optional.empty());

    pod.status("ping", "-c", "2", "-i", "0.2", "-W", "1", REMOTE_POD);

    assertEquals(0, peer.packets("raw", "PREROUTING", "pod-source"));
  }

  @Test
  void nodeOwnTrafficToRemoteBlockIsDroppedButUnderlayIsNot() throws Exception {
    new NodeFirewall(settings).enforce(Optional.of(BLOCK));

    assertNotEquals(0, node.status("ping", "-c", "2", "-i", "0.2", "-W", "1", REMOTE_POD));
    assertEquals(0, peer.packets("raw", "PREROUTING", "pod-source"));
    assertTrue(node.packets("filter", "IPSEC-CNI-OUT", "unencrypted to the cluster") >= 2);
    assertEquals(0, node.status("ping", "-c", "1", "-W", "2", "198.51.100.2"), "underlay (IKE's path) blocked");
    assertEquals(0, node.status("ping", "-c", "1", "-W", "2", "10.128.1.1"), "node's own pod-network address");
  }

  /**
   * cluster.overIpsec: a real listener on the control port of the node and of its peer; what
   * reaches it in clear before the rules, reaches it no more after, either way, while the node
   * still reaches its own port on lo. (That a host-to-host SA opens it: the kernel lab.)
   */
  @Test
  void overIpsecTheControlPortTakesAndSendsNothingInClear() throws Exception {
    Process onNode = listen(node, 5701);
    Process onPeer = listen(peer, 5701);
    try {
      assertTrue(connects(peer, NODE_UNDERLAY, 5701), "control: in clear from the peer before the rules");
      assertTrue(connects(node, "198.51.100.2", 5701), "control: in clear to the peer before the rules");

      new NodeFirewall(settings.withControlPlaneOverIpsec(true)).enforce(Optional.of(BLOCK));

      assertFalse(connects(peer, NODE_UNDERLAY, 5701), "a connection in clear from the underlay was accepted");
      assertFalse(connects(node, "198.51.100.2", 5701), "a connection in clear left for another node's control port");
      assertTrue(connects(node, NODE_UNDERLAY, 5701), "the node reaches its own port (lo)");
      assertTrue(connects(node, "127.0.0.1", 5701), "the node reaches its own port on 127.0.0.1");
      assertTrue(node.packets("filter", "IPSEC-CNI-IN", "only through IPsec") >= 1);
      assertTrue(node.packets("filter", "IPSEC-CNI-OUT", "never in clear") >= 1);
    } finally {
      onNode.destroyForcibly().waitFor();
      onPeer.destroyForcibly().waitFor();
    }
  }

  /**
   * A denied node (charon.deniedNodesFile) loses the control plane by its address, both ways,
   * also without cluster.overIpsec (its certificate would still open an SA): a real listener on
   * the node's and on the peer's control port; only the denied address is refused.
   */
  @Test
  void aDeniedNodesAddressIsClosedOutOfTheControlPortsBothWays() throws Exception {
    Process onNode = listen(node, 5701);
    Process onPeer = listen(peer, 5701);
    try {
      NodeFirewall firewall = new NodeFirewall(settings);
      firewall.enforce(Optional.of(BLOCK), java.util.Map.of("node9", OUTSIDE));
      assertTrue(connects(peer, NODE_UNDERLAY, 5701), "another node's address was refused");
      assertTrue(connects(node, "198.51.100.2", 5701), "the node cannot reach a node that is not denied");

      firewall.enforce(Optional.of(BLOCK), java.util.Map.of("node2", "198.51.100.2"));
      assertFalse(connects(peer, NODE_UNDERLAY, 5701), "the denied node reached the control port");
      assertFalse(connects(node, "198.51.100.2", 5701), "the node reached the denied node's control port");
      assertTrue(connects(node, NODE_UNDERLAY, 5701), "the node reaches its own port (lo)");
      assertTrue(node.packets("filter", "IPSEC-CNI-IN", "node node2 denied") >= 1);
      assertTrue(node.packets("filter", "IPSEC-CNI-OUT", "node node2 denied") >= 1);

      firewall.enforce(Optional.of(BLOCK), java.util.Map.of());
      assertTrue(connects(peer, NODE_UNDERLAY, 5701), "the node, no longer denied, is still refused");
    } finally {
      onNode.destroyForcibly().waitFor();
      onPeer.destroyForcibly().waitFor();
    }
  }

  /** A TCP listener in the namespace, accepting and closing; returns once the port is listening. */
  private static Process listen(Netns ns, int port) throws Exception {
    java.util.List<String> command = new java.util.ArrayList<>(ns.prefix());
    command.addAll(java.util.List.of("python3", "-c", "import socket\n"
        + "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        + "s.bind(('0.0.0.0', " + port + ")); s.listen(16)\n"
        + "while True: s.accept()[0].close()\n"));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .start();
    assertTrue(Netns.eventually(10_000, () -> ns.status("sh", "-c", "ss -Hltn 'sport = :" + port + "' | grep -q .") == 0),
        ns.name + ": nothing listens on " + port);
    return p;
  }

  /** Whether a TCP connection to address:port is set up within 3 s. */
  private static boolean connects(Netns from, String address, int port) {
    return from.status("timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/" + address + "/" + port) == 0;
  }

  @Test
  void podToOutsideIsMasqueradedEvenWithForwardPolicyDrop() throws Exception {
    node.run("iptables", "-P", "FORWARD", "DROP");
    new NodeFirewall(settings).enforce(Optional.of(BLOCK));

    assertEquals(0, pod.status("ping", "-c", "2", "-i", "0.2", "-W", "2", OUTSIDE));

    assertTrue(peer.packets("raw", "PREROUTING", "masqueraded") >= 2);
    assertEquals(0, peer.packets("raw", "PREROUTING", "pod-source"));
  }

  @Test
  void nodeAndPodsReachEachOtherOnTheBridge() throws Exception {
    new NodeFirewall(settings).enforce(Optional.of(BLOCK));

    assertEquals(0, node.status("ping", "-c", "1", "-W", "2", "10.128.1.2"));
    assertEquals(0, pod.status("ping", "-c", "1", "-W", "2", "10.128.1.1"));
  }

  @Test
  void libipsecTunnelIsTheOnlyWayOutAndItsLossDoesNotLeak() throws Exception {
    // A stand-in for charon's TUN device (a veth ending in the node): what is routed into it counts as encrypted.
    node.run("ip", "link", "add", "fw-tun0", "type", "veth", "peer", "name", "fw-tun0-end");
    node.run("ip", "link", "set", "fw-tun0-end", "up");
    node.run("ip", "link", "set", "fw-tun0", "up");
    node.run("ip", "route", "add", "10.128.2.0/24", "dev", "fw-tun0");
    FirewallSettings libipsec = settings.withDatapath(Datapath.LIBIPSEC, "fw-tun0");
    new NodeFirewall(libipsec).enforce(Optional.of(BLOCK));

    pod.status("ping", "-c", "2", "-i", "0.2", "-W", "1", REMOTE_POD);
    assertTrue(node.packets("filter", "IPSEC-CNI-FWD", "pod to remote pod, encrypted") >= 2);

    node.run("ip", "link", "delete", "fw-tun0");  // charon killed: its device and routes vanish
    pod.status("ping", "-c", "2", "-i", "0.2", "-W", "1", REMOTE_POD);

    assertEquals(0, peer.packets("raw", "PREROUTING", "pod-source"));
    assertTrue(node.packets("filter", "IPSEC-CNI-FWD", "unencrypted to the cluster") >= 2);
  }

  /**
   * A NodePort as kube-proxy makes it (DNAT in PREROUTING), reached from outside and sent on to a
   * pod of another node: it leaves through the tunnel with the gateway as its source, inside the
   * block the pair's selectors hold (not the underlay address); with the tunnel gone it is dropped.
   */
  @Test
  void libipsecServiceTrafficToARemotePodLeavesThroughTheTunnelFromTheGateway() throws Exception {
    tunnelStandInWithServices();

    peer.status("curl", "-s", "-m", "2", "http://198.51.100.1:30970/");
    assertTheSynLeftThroughTheTunnelFromTheGateway();
    assertTrue(node.packets("filter", "IPSEC-CNI-FWD", "service traffic to a remote pod") >= 1);

    node.run("ip", "link", "delete", "fw-tun0");  // charon killed: its device and routes vanish
    peer.status("curl", "-s", "-m", "2", "http://198.51.100.1:30970/");
    assertEquals(0, peer.packets("raw", "PREROUTING", "pod-destination"), "nothing to a pod address on the underlay");
    assertTrue(node.packets("filter", "IPSEC-CNI-FWD", "unencrypted to the cluster") >= 1);
  }

  /**
   * The node's own request to a Service's cluster IP (kube-proxy's DNAT in nat OUTPUT) whose
   * endpoint is a remote pod: through the tunnel from the gateway; with the tunnel gone it is
   * dropped after routing (IPSEC-CNI-POST), though filter OUTPUT saw the route to the cluster IP.
   */
  @Test
  void libipsecNodeTrafficToAServiceReachesTheRemotePodOnlyThroughTheTunnel() throws Exception {
    tunnelStandInWithServices();

    node.status("curl", "-s", "-m", "2", "http://10.96.0.10:80/");
    assertTheSynLeftThroughTheTunnelFromTheGateway();

    node.run("ip", "link", "delete", "fw-tun0");
    node.status("curl", "-s", "-m", "2", "http://10.96.0.10:80/");
    assertEquals(0, peer.packets("raw", "PREROUTING", "pod-destination"), "nothing to a pod address on the underlay");
    assertTrue(node.packets("mangle", "IPSEC-CNI-POST", "service traffic not through the tunnel") >= 1);
  }

  private void assertTheSynLeftThroughTheTunnelFromTheGateway() {
    assertTrue(node.packets("raw", "PREROUTING", "from-gateway") >= 1, "the SYN left through the tunnel from 10.128.1.1");
    assertEquals(0, node.packets("raw", "PREROUTING", "other-source"));
  }

  /**
   * Kernel ESP, no tunnel (no XFRM state, no pair's policy): a NodePort request from outside and
   * the node's own cluster-IP request, both DNATed to a remote pod, pass the filter chains (the
   * kernel could encrypt them only after SNAT) and are dropped after NAT by the nftables guard.
   */
  @Test
  void kernelServiceTrafficToARemotePodWithoutATunnelIsDroppedAfterNat() throws Exception {
    kernelServices(settings);

    peer.status("curl", "-s", "-m", "2", "http://198.51.100.1:30970/");
    node.status("curl", "-s", "-m", "2", "http://10.96.0.10:80/");

    assertTrue(node.packets("filter", "IPSEC-CNI-FWD", "service traffic to a remote pod, guarded after NAT") >= 1);
    assertTrue(node.packets("filter", "IPSEC-CNI-OUT", "service traffic, guarded after NAT") >= 1);
    assertEquals(0, peer.packets("raw", "PREROUTING", "pod-destination"), "nothing to a pod address on the underlay");
  }

  /** The same with the XFRM fallback (a kernel without nf_tables for IPv4): the block policy drops it. */
  @Test
  void kernelServiceTrafficIsDroppedByTheXfrmBlockWhereNftablesCannot(@TempDir Path bin) throws Exception {
    FirewallSettings noNft = settings.withCommandPrefix(node.prefixFailing(bin, "nft"));
    kernelServices(noNft);

    peer.status("curl", "-s", "-m", "2", "http://198.51.100.1:30970/");
    node.status("curl", "-s", "-m", "2", "http://10.96.0.10:80/");

    assertTrue(node.packets("filter", "IPSEC-CNI-FWD", "service traffic to a remote pod, guarded after NAT") >= 1);
    assertEquals(0, peer.packets("raw", "PREROUTING", "pod-destination"), "nothing to a pod address on the underlay");
    assertEquals(0, node.status("ping", "-c", "1", "-W", "2", "10.128.1.2"), "the node still reaches its own pod");
  }

  /** The control: the guard after NAT removed, the accepting rules left, the same requests leak. */
  @Test
  void withoutTheGuardAfterNatTheSameServiceTrafficWouldLeak() throws Exception {
    kernelServices(settings);
    node.run("nft", "delete", "table", "ip", "ipsec-cni");

    peer.status("curl", "-s", "-m", "2", "http://198.51.100.1:30970/");

    assertTrue(peer.packets("raw", "PREROUTING", "pod-destination") >= 1, "the test's leak detector sees the leak");
  }

  private void kernelServices(FirewallSettings kernel) throws Exception {
    new NodeFirewall(kernel).enforce(Optional.of(BLOCK));
    kubeProxyDnatsToTheRemotePod();
    peer.restore("""
        *raw
        -A PREROUTING -d 10.128.0.0/16 -m comment --comment pod-destination
        COMMIT
        """);
  }

  /**
   * A pod cannot open a connection to the agents' ports (Hazelcast, event bus) of another node,
   * where it would arrive masqueraded to this node's address, nor to this node's own.
   */
  @Test
  void podsCannotReachTheAgentsPortsOfThisNodeOrAnother() throws Exception {
    new NodeFirewall(settings).enforce(Optional.of(BLOCK));
    peer.restore("""
        *raw
        -A PREROUTING -p tcp -m tcp --dport 5701 -m comment --comment control-plane-syn
        COMMIT
        """);

    assertNotEquals(0, pod.status("curl", "-s", "-m", "2", "http://198.51.100.2:5701/"), "another node's Hazelcast port");
    assertNotEquals(0, pod.status("curl", "-s", "-m", "2", "http://10.128.1.1:5701/"), "this node's Hazelcast port");
    assertEquals(0, peer.packets("raw", "PREROUTING", "control-plane-syn"), "no SYN reached the other node");
    assertTrue(node.packets("filter", "IPSEC-CNI-FWD", "control plane: not from pods") >= 1);
    assertTrue(node.packets("filter", "IPSEC-CNI-IN", "control plane: not from pods") >= 1);
    assertEquals(0, pod.status("ping", "-c", "1", "-W", "2", "198.51.100.2"), "the pod still reaches that host otherwise");
  }

  /** Two DNATs as kube-proxy makes them, to the remote pod: a NodePort at the node's underlay address, a cluster IP. */
  private void kubeProxyDnatsToTheRemotePod() {
    node.restore("""
        *nat
        -A PREROUTING -d 198.51.100.1/32 -p tcp -m tcp --dport 30970 -m comment --comment nodeport -j DNAT --to-destination 10.128.2.2:8080
        -A OUTPUT -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment cluster-ip -j DNAT --to-destination 10.128.2.2:8080
        COMMIT
        """);
  }

  /**
   * A veth standing in for charon's TUN, routing the remote block (what is routed into it counts
   * as encrypted), the libipsec firewall, and two kube-proxy-like DNATs to the remote pod: a
   * NodePort at the node's underlay address and a cluster IP for the node's own traffic.
   */
  private void tunnelStandInWithServices() throws Exception {
    node.run("ip", "link", "add", "fw-tun0", "type", "veth", "peer", "name", "fw-tun0-end");
    node.run("ip", "link", "set", "fw-tun0-end", "up");
    node.run("ip", "link", "set", "fw-tun0", "up");
    node.run("ip", "route", "add", "10.128.2.0/24", "dev", "fw-tun0");
    // a TUN has no neighbours; the veth stand-in gets one, so IP packets (not ARP) come out of its end
    String end = node.run("cat", "/sys/class/net/fw-tun0-end/address").trim();
    node.run("ip", "neigh", "add", REMOTE_POD, "lladdr", end, "dev", "fw-tun0", "nud", "permanent");
    new NodeFirewall(settings.withDatapath(Datapath.LIBIPSEC, "fw-tun0")).enforce(Optional.of(BLOCK));
    kubeProxyDnatsToTheRemotePod();
    node.restore("""
        *raw
        -A PREROUTING -i fw-tun0-end -s 10.128.1.1/32 -d 10.128.2.2/32 -m comment --comment from-gateway -j DROP
        -A PREROUTING -i fw-tun0-end -m comment --comment other-source -j DROP
        COMMIT
        """);
    peer.restore("""
        *raw
        -A PREROUTING -d 10.128.0.0/16 -m comment --comment pod-destination
        COMMIT
        """);
  }
}

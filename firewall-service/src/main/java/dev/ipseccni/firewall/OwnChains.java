package dev.ipseccni.firewall;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The rules of this node's firewall, derived from the settings and the own block.
 *
 * <p>Pod traffic to the cluster CIDR leaves the node only when it is IPsec-protected; anything
 * else to the cluster CIDR is dropped (the plaintext guard), so a dead charon or a missing tunnel
 * cannot send pod traffic along the default route. Rules name the cluster CIDR, never a peer's
 * block: the rule set stays the same size however many nodes join, and a block that has no
 * tunnel yet is guarded by the same drop.
 *
 * <p>Order in {@code IPSEC-CNI-FWD} (jumped to from the first position of FORWARD, so a FORWARD
 * policy of DROP set by Docker or kubelet does not stop pod traffic):
 * <ol>
 *   <li>replies from outside the cluster back to pods (the bulk of the packets, so first; the
 *       source excludes the cluster CIDR so that a reply can never bypass the guard);
 *   <li>pod to pod on the local bridge (seen only with br_netfilter);
 *   <li>pod to a remote block, protected; remote block to pod, protected;
 *   <li>traffic from outside the cluster that a NodePort or hostPort DNATed to a remote pod:
 *       libipsec, leaving through the TUN; kernel ESP, leaving anywhere but the bridge, because
 *       the kernel encrypts it only after IPSEC-CNI-NAT gave it the gateway's source, and the
 *       {@link GuardAfterNat} drops it there when no tunnel took it (without that guard, left out);
 *   <li>the guard: anything else to the cluster CIDR not going onto the bridge, and anything from
 *       the cluster CIDR onto the bridge that did not arrive protected, is dropped;
 *   <li>pods to the agents' ports (Hazelcast, event bus) of any node are dropped;
 *   <li>pods to outside the cluster are accepted (and masqueraded in {@code IPSEC-CNI-NAT}).
 * </ol>
 * {@code IPSEC-CNI-IN} drops pods' connections to this node's agent ports, and every connection
 * to them from a denied node's address ({@code IPSEC-CNI-OUT}: to its ports).
 * Everything else returns to FORWARD untouched. {@code IPSEC-CNI-OUT} is the same guard for the
 * node's own traffic: IKE between underlay addresses lies outside the cluster CIDR, traffic to the
 * node's own addresses leaves on lo, and traffic to its own pods leaves on the bridge.
 *
 * <p>{@code IPSEC-CNI-POST} (mangle POSTROUTING, libipsec only): the node's own
 * traffic that kube-proxy DNATed to a pod leaves only onto the bridge or into the tunnel. With
 * kernel ESP the {@link GuardAfterNat} does that job, after NAT.
 *
 * <p>{@code IPSEC-CNI-NAT} (first in POSTROUTING): pod addresses to remote pods keep their source
 * (ACCEPT, so kube-proxy's MASQUERADE after us does not give them the underlay address); anything
 * else to a remote pod (the node's own traffic, service traffic kube-proxy DNATed) leaves with the
 * gateway's address, which the pair's selectors hold; pods to outside the cluster are masqueraded.
 */
public final class OwnChains {
  private OwnChains() {}

  /** The comment on our jumps; also what the chain names start with. */
  public static final String MARK = "ipsec-cni";
  public static final String FORWARD_CHAIN = "IPSEC-CNI-FWD";
  public static final String OUTPUT_CHAIN = "IPSEC-CNI-OUT";
  public static final String NAT_CHAIN = "IPSEC-CNI-NAT";
  public static final String POST_CHAIN = "IPSEC-CNI-POST";
  public static final String INPUT_CHAIN = "IPSEC-CNI-IN";
  public static final List<String> NAMES = List.of(FORWARD_CHAIN, OUTPUT_CHAIN, NAT_CHAIN, POST_CHAIN, INPUT_CHAIN);

  /** The chains for these settings, with no guard after NAT (libipsec needs none). */
  public static List<OwnChain> render(FirewallSettings settings, Optional<Ipv4Cidr> ownBlock) {
    return render(settings, ownBlock, false);
  }

  /**
   * The chains for these settings; without an own block only the guard (no pod can exist yet).
   * {@code guardedAfterNat}: kernel ESP only, a {@link GuardAfterNat} is in place, so Service
   * traffic DNATed to remote pods may pass the filter chains unprotected.
   */
  public static List<OwnChain> render(FirewallSettings settings, Optional<Ipv4Cidr> ownBlock,
      boolean guardedAfterNat) {
    return render(settings, ownBlock, guardedAfterNat, java.util.Map.of());
  }

  /**
   * As above, with the denied nodes' underlay addresses ({@code charon.deniedNodesFile}, by node
   * name): the control-plane ports are closed to and from them both ways, whether the packets
   * come in clear or through an SA (a denied node's certificate still carries the cluster CA).
   */
  public static List<OwnChain> render(FirewallSettings settings, Optional<Ipv4Cidr> ownBlock,
      boolean guardedAfterNat, java.util.Map<String, String> deniedNodes) {
    String cluster = settings.cluster().toString();
    String bridge = settings.bridge();
    String tunnel = settings.tunnelInterface();
    boolean kernel = settings.datapath() == Datapath.KERNEL;

    List<String> forward = new ArrayList<>();
    List<String> output = new ArrayList<>();
    List<String> nat = new ArrayList<>();
    if (ownBlock.isPresent()) {
      String block = ownBlock.get().toString();
      forward.add("! -s " + cluster + " -d " + block + " -o " + bridge
          + " -m conntrack --ctstate RELATED,ESTABLISHED" + comment("replies to pods") + " -j ACCEPT");
      forward.add("-i " + bridge + " -o " + bridge + comment("pod to pod on the bridge") + " -j ACCEPT");
      forward.add(kernel
          ? "-s " + block + " -d " + cluster + " -m policy --dir out --pol ipsec" + comment("pod to remote pod, encrypted")
              + " -j ACCEPT"
          : "-s " + block + " -d " + cluster + " -i " + bridge + " -o " + tunnel
              + comment("pod to remote pod, encrypted") + " -j ACCEPT");
      forward.add(kernel
          ? "-s " + cluster + " -d " + block + " -o " + bridge + " -m policy --dir in --pol ipsec"
              + comment("remote pod to pod, encrypted") + " -j ACCEPT"
          : "-s " + cluster + " -d " + block + " -i " + tunnel + " -o " + bridge
              + comment("remote pod to pod, encrypted") + " -j ACCEPT");
    }
    if (ownBlock.isPresent() && kernel && guardedAfterNat) {
      forward.add("! -s " + cluster + " -d " + cluster + " ! -o " + bridge + " -m conntrack --ctstate DNAT"
          + comment("service traffic to a remote pod, guarded after NAT") + " -j ACCEPT");
    }
    if (ownBlock.isPresent() && !kernel) {
      // A Service's NodePort (kube-proxy's DNAT) or a hostPort reached from outside the cluster,
      // sent on to a pod of another node: it leaves through the tunnel, with the gateway as its
      // source (IPSEC-CNI-NAT), so the pair's selectors carry it. Only DNATed traffic: this node
      // is no router from outside into the pod network. The TUN exists only while charon runs.
      forward.add("! -s " + cluster + " -d " + cluster + " -o " + tunnel + " -m conntrack --ctstate DNAT"
          + comment("service traffic to a remote pod, encrypted") + " -j ACCEPT");
    }
    forward.add("-d " + cluster + " ! -o " + bridge + comment("plaintext guard: unencrypted to the cluster") + " -j DROP");
    forward.add("-s " + cluster + " -o " + bridge + comment("plaintext guard: unencrypted from the cluster")
        + " -j DROP");
    List<String> input = new ArrayList<>();
    List<String> deniedOut = new ArrayList<>();
    new java.util.TreeMap<>(deniedNodes).forEach((node, address) -> {
      for (int port : settings.controlPlanePorts()) {
        input.add("-s " + address + "/32 -p tcp -m tcp --dport " + port
            + comment("control plane: node " + node + " denied") + " -j DROP");
        deniedOut.add("-d " + address + "/32 -p tcp -m tcp --dport " + port
            + comment("control plane: node " + node + " denied") + " -j DROP");
      }
    });
    for (int port : settings.controlPlanePorts()) {
      // the agents' own ports: a pod is no member of the cluster, on this node or another
      forward.add("! -d " + cluster + " -i " + bridge + " -p tcp -m tcp --dport " + port
          + comment("control plane: not from pods") + " -j DROP");
      input.add("-i " + bridge + " -p tcp -m tcp --dport " + port + comment("control plane: not from pods")
          + " -j DROP");
    }
    if (kernel && settings.controlPlaneOverIpsec()) {
      // Only another node's host-to-host SA (transport mode) opens them: not a pod's tunnel, not clear text.
      for (int port : settings.controlPlanePorts()) {
        input.add("-p tcp -m tcp --dport " + port + " -m policy --dir in --pol ipsec --mode transport"
            + comment("control plane: through IPsec") + " -j RETURN");
        input.add("! -i lo -p tcp -m tcp --dport " + port + comment("control plane: only through IPsec") + " -j DROP");
      }
    }
    if (ownBlock.isPresent()) {
      forward.add("-s " + ownBlock.get() + " ! -d " + cluster + " -i " + bridge + comment("pods to outside the cluster")
          + " -j ACCEPT");
    }

    output.add("-o lo" + comment("to the node itself") + " -j RETURN");
    output.addAll(deniedOut);
    if (kernel && settings.controlPlaneOverIpsec()) {
      for (int port : settings.controlPlanePorts()) {
        output.add("-p tcp -m tcp --dport " + port + " -m policy --dir out --pol none"
            + comment("control plane: never in clear") + " -j DROP");
      }
    }
    output.add(kernel
        ? "-d " + cluster + " -m policy --dir out --pol ipsec" + comment("node to remote pod, encrypted") + " -j RETURN"
        : "-d " + cluster + " -o " + tunnel + comment("node to remote pod, encrypted") + " -j RETURN");
    List<String> post = new ArrayList<>();
    if (kernel && guardedAfterNat && ownBlock.isPresent()) {
      output.add("-d " + cluster + " -m conntrack --ctstate DNAT --ctdir ORIGINAL"
          + comment("service traffic, guarded after NAT") + " -j RETURN");
    }
    if (!kernel) {
      // The node's own traffic to a Service (kube-proxy's DNAT in nat OUTPUT): filter OUTPUT still
      // sees the interface of the route to the Service's address, not the pod's; the route after
      // the DNAT is known in POSTROUTING, where IPSEC-CNI-POST guards it.
      output.add("-d " + cluster + " -m conntrack --ctstate DNAT --ctdir ORIGINAL"
          + comment("service traffic, guarded after routing in " + POST_CHAIN) + " -j RETURN");
      post.add("-d " + cluster + " -o " + bridge + " -m conntrack --ctstate DNAT --ctdir ORIGINAL"
          + comment("service traffic to a pod on the bridge") + " -j RETURN");
      post.add("-d " + cluster + " -o " + tunnel + " -m conntrack --ctstate DNAT --ctdir ORIGINAL"
          + comment("service traffic to a remote pod, encrypted") + " -j RETURN");
      post.add("-d " + cluster + " -m conntrack --ctstate DNAT --ctdir ORIGINAL"
          + comment("plaintext guard: service traffic not through the tunnel") + " -j DROP");
    }
    output.add("-d " + cluster + " ! -o " + bridge + comment("plaintext guard: unencrypted to the cluster") + " -j DROP");

    if (ownBlock.isPresent()) {
      String block = ownBlock.get().toString();
      // Before kube-proxy's KUBE-POSTROUTING: its MASQUERADE would give a NodePort hop the
      // underlay address as source, which no tunnel selector holds (a drop with libipsec, a
      // plaintext packet with kernel ESP). ACCEPT ends the nat table's walk for the packet.
      nat.add("-s " + block + " -d " + cluster + " ! -o " + bridge + comment("pod addresses stay inside the cluster")
          + " -j ACCEPT");
      nat.add("! -s " + block + " -d " + cluster + " ! -o " + bridge
          + comment("node and service traffic to remote pods, from the gateway") + " -j SNAT --to-source "
          + ownBlock.get().firstHost());
      nat.add("-s " + block + " -d " + cluster + comment("pod to pod on the bridge") + " -j RETURN");
      nat.add("-s " + block + " ! -o " + bridge + comment("pods to outside the cluster") + " -j MASQUERADE");
    }
    List<OwnChain> chains = new ArrayList<>(List.of(
        new OwnChain("filter", FORWARD_CHAIN, "FORWARD", forward),
        new OwnChain("filter", OUTPUT_CHAIN, "OUTPUT", output),
        new OwnChain("nat", NAT_CHAIN, "POSTROUTING", nat),
        new OwnChain("filter", INPUT_CHAIN, "INPUT", input)));
    if (!kernel) {
      chains.add(new OwnChain("mangle", POST_CHAIN, "POSTROUTING", post));
    }
    return List.copyOf(chains);
  }

  /** A comment in the form iptables-save prints: quoted only when it holds a space. */
  private static String comment(String text) {
    String full = MARK + ": " + text;
    return " -m comment --comment \"" + full + "\"";
  }
}

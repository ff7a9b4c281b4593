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
 *   <li>the guard: anything else to the cluster CIDR not going onto the bridge, and anything from
 *       the cluster CIDR onto the bridge that did not arrive protected, is dropped;
 *   <li>pods to outside the cluster are accepted (and masqueraded in {@code IPSEC-CNI-NAT}).
 * </ol>
 * Everything else returns to FORWARD untouched. {@code IPSEC-CNI-OUT} is the same guard for the
 * node's own traffic: IKE between underlay addresses lies outside the cluster CIDR, traffic to the
 * node's own addresses leaves on lo, and traffic to its own pods leaves on the bridge.
 */
public final class OwnChains {
  private OwnChains() {}

  /** The comment on our jumps; also what the chain names start with. */
  public static final String MARK = "ipsec-cni";
  public static final String FORWARD_CHAIN = "IPSEC-CNI-FWD";
  public static final String OUTPUT_CHAIN = "IPSEC-CNI-OUT";
  public static final String NAT_CHAIN = "IPSEC-CNI-NAT";
  public static final List<String> NAMES = List.of(FORWARD_CHAIN, OUTPUT_CHAIN, NAT_CHAIN);

  /** The chains for these settings; without an own block only the guard (no pod can exist yet). */
  public static List<OwnChain> render(FirewallSettings settings, Optional<Ipv4Cidr> ownBlock) {
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
    forward.add("-d " + cluster + " ! -o " + bridge + comment("plaintext guard: unencrypted to the cluster") + " -j DROP");
    forward.add("-s " + cluster + " -o " + bridge + comment("plaintext guard: unencrypted from the cluster")
        + " -j DROP");
    if (ownBlock.isPresent()) {
      forward.add("-s " + ownBlock.get() + " ! -d " + cluster + " -i " + bridge + comment("pods to outside the cluster")
          + " -j ACCEPT");
    }

    output.add("-o lo" + comment("to the node itself") + " -j RETURN");
    output.add(kernel
        ? "-d " + cluster + " -m policy --dir out --pol ipsec" + comment("node to remote pod, encrypted") + " -j RETURN"
        : "-d " + cluster + " -o " + tunnel + comment("node to remote pod, encrypted") + " -j RETURN");
    output.add("-d " + cluster + " ! -o " + bridge + comment("plaintext guard: unencrypted to the cluster") + " -j DROP");

    if (ownBlock.isPresent()) {
      String block = ownBlock.get().toString();
      nat.add("-s " + block + " -d " + cluster + comment("pod addresses stay inside the cluster") + " -j RETURN");
      nat.add("-s " + block + " ! -o " + bridge + comment("pods to outside the cluster") + " -j MASQUERADE");
    }
    return List.of(
        new OwnChain("filter", FORWARD_CHAIN, "FORWARD", forward),
        new OwnChain("filter", OUTPUT_CHAIN, "OUTPUT", output),
        new OwnChain("nat", NAT_CHAIN, "POSTROUTING", nat));
  }

  /** A comment in the form iptables-save prints: quoted only when it holds a space. */
  private static String comment(String text) {
    String full = MARK + ": " + text;
    return " -m comment --comment \"" + full + "\"";
  }
}

package dev.ipseccni.tunnel;

import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.tunnel.identity.IkeAuth;
import dev.ipseccni.tunnel.identity.NodeIdentity;
import dev.ipseccni.tunnel.vici.ViciMessage;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * Desired state: from this node's lease and the peers' leases, one {@link PeerTunnel} per
 * peer, rendered as the VICI messages charon is given and as the equivalent swanctl.conf.
 * Both renderings come from the same message tree, so the file on disk is exactly what
 * was loaded. Work is linear in the number of peers.
 */
public final class TunnelRenderer {
  /** Dead peer detection interval; a peer silent this long gets its CHILD SA restarted. */
  static final String DPD_DELAY = "30s";
  static final String IKE_REKEY = "4h";
  static final String CHILD_REKEY = "1h";

  private final TunnelSettings settings;

  public TunnelRenderer(TunnelSettings settings) {
    this.settings = settings;
  }

  /**
   * One tunnel per peer lease, keyed by connection name, in the order of {@code leases}. Our
   * own lease and leases without a usable block are skipped.
   */
  public Map<String, PeerTunnel> desired(NodeBlockLease own, Collection<NodeBlockLease> leases) {
    Map<String, PeerTunnel> out = new LinkedHashMap<>(Math.max(16, leases.size() * 2));
    for (NodeBlockLease peer : leases) {
      if (peer.node().equals(own.node()) || peer.block().equals(own.block())) {
        continue;
      }
      String name = PeerTunnel.connName(peer.node());
      out.put(name, new PeerTunnel(name, own.node(), peer.node(), settings.underlayAddress(),
          peer.underlayAddress(), own.block(), peer.block(), own.node().compareTo(peer.node()) < 0));
    }
    return out;
  }

  /** The body of {@code load-conn} for one tunnel authenticated with pair keys (the connection section, without its name). */
  public ViciMessage connection(PeerTunnel t) {
    return connection(t, ViciMessage.builder().put("auth", "psk").put("id", t.localNode()).build(),
        ViciMessage.builder().put("auth", "psk").put("id", t.peerNode()).build());
  }

  /**
   * The body of {@code load-conn} for one tunnel authenticated with certificates: this node
   * presents its certificate under its node name; the peer must present a certificate of the
   * cluster CA naming the node whose lease the tunnel serves (its id is matched against the
   * certificate's subject and subjectAltNames), so no other node's certificate will do.
   *
   * <p>The local certificate is not named in the connection: charon takes the one loaded with
   * load-cert whose name matches and whose key it holds, the most recently loaded first. So a
   * renewal (load-cert, load-key) changes what new authentications present without reloading
   * connections, which would restart their CHILD SAs.
   */
  public ViciMessage connection(PeerTunnel t, NodeIdentity identity) {
    return connection(t, ViciMessage.builder().put("auth", "pubkey").put("id", t.localNode()).build(),
        ViciMessage.builder().put("auth", "pubkey").put("id", t.peerNode())
            .list("cacerts", List.of(identity.caPem())).build());
  }

  private ViciMessage connection(PeerTunnel t, ViciMessage local, ViciMessage remote) {
    Proposals p = settings.proposals();
    ViciMessage child = ViciMessage.builder()
        .list("local_ts", List.of(t.localBlock()))
        .list("remote_ts", List.of(t.peerBlock()))
        .list("esp_proposals", List.of(p.esp().split(",")))
        .put("mode", "tunnel")
        .put("rekey_time", CHILD_REKEY)
        .put("dpd_action", "restart")
        .put("start_action", startAction(t))
        .build();
    return ViciMessage.builder()
        .put("version", 2)
        .list("local_addrs", List.of(t.localAddress()))
        .list("remote_addrs", List.of(t.peerAddress()))
        .put("encap", settings.datapath() == Datapath.LIBIPSEC)
        .put("mobike", false)
        .list("proposals", List.of(p.ike().split(",")))
        .put("dpd_delay", DPD_DELAY)
        .put("rekey_time", IKE_REKEY)
        .section("local", local)
        .section("remote", remote)
        .section("children", ViciMessage.builder().section(t.connName(), child).build())
        .build();
  }

  /**
   * Both datapaths bring tunnels up actively (the initiator on load, the reconciler when one is
   * missing), so the first packet does not wait for IKE. The kernel datapath also installs trap
   * policies on both sides: traffic to a peer block with no SA (a tunnel torn down, the agent
   * stopped) makes the kernel ask charon for one, and is held back, never sent in clear. Traps do
   * not fire with libipsec ("could not find an outbound IPsec SA"): there the initiator starts
   * the tunnel and the other side waits.
   */
  String startAction(PeerTunnel t) {
    if (settings.datapath() == Datapath.KERNEL) {
      return "trap";
    }
    return t.initiator() ? "start" : "none";
  }

  /**
   * The bodies of {@code load-shared} for one pair: the offered key, owned by both
   * identities (charon authenticates with the best-matching key), and during a rotation
   * the accepted one, owned by the peer only (it matches when charon verifies the peer,
   * never better than the offered one when it authenticates itself). Never log them.
   */
  public List<ViciMessage> sharedKeys(PeerTunnel t, PairKeys keys) {
    List<ViciMessage> out = new java.util.ArrayList<>(2);
    out.add(ViciMessage.builder()
        .put("id", t.sharedKeyId())
        .put("type", "IKE")
        .put("data", keys.offered().pairKey(t.localNode(), t.peerNode()).reveal())
        .list("owners", List.of(t.localNode(), t.peerNode()))
        .build());
    keys.accepted().ifPresent(accepted -> out.add(ViciMessage.builder()
        .put("id", t.acceptedKeyId())
        .put("type", "IKE")
        .put("data", accepted.pairKey(t.localNode(), t.peerNode()).reveal())
        .list("owners", List.of(t.peerNode()))
        .build()));
    return out;
  }

  /**
   * The swanctl.conf equivalent of all tunnels: connections, then secrets (each pair's
   * keys as {@code keys} gives them). Holds keys: write it 0600.
   */
  public String swanctlConf(Collection<PeerTunnel> tunnels, Function<PeerTunnel, PairKeys> keys) {
    StringBuilder out = new StringBuilder(256 + tunnels.size() * 900);
    out.append("# Rendered by the ipsec-cni tunnel service from the node block leases; do not edit.\n");
    out.append("connections {\n");
    for (PeerTunnel t : tunnels) {
      section(out, 1, t.connName(), connection(t));
    }
    out.append("}\n");
    out.append("secrets {\n");
    for (PeerTunnel t : tunnels) {
      for (ViciMessage key : sharedKeys(t, keys.apply(t))) {
        List<String> owners = key.list("owners");
        ViciMessage.Builder entry = ViciMessage.builder();
        if (owners.size() > 1) {
          entry.put("id-local", t.localNode());
        }
        entry.put("id-peer", t.peerNode()).put("secret", key.value("data").orElseThrow());
        section(out, 1, "ike-" + key.value("id").orElseThrow().substring("psk-".length()), entry.build());
      }
    }
    out.append("}\n");
    return out.toString();
  }

  /**
   * The swanctl.conf equivalent of all tunnels authenticated with certificates: the CA by
   * file name, as swanctl takes it, and no secrets (charon was given the node's certificate
   * and private key with load-cert and load-key).
   */
  public String swanctlConf(Collection<PeerTunnel> tunnels, IkeAuth.Certificates files) {
    StringBuilder out = new StringBuilder(256 + tunnels.size() * 900);
    out.append("# Rendered by the ipsec-cni tunnel service from the node block leases; do not edit.\n");
    out.append("# Loaded with load-cert and load-key: ").append(files.certificate()).append(", ")
        .append(files.privateKey()).append('\n');
    out.append("connections {\n");
    for (PeerTunnel t : tunnels) {
      section(out, 1, t.connName(), connection(t,
          ViciMessage.builder().put("auth", "pubkey").put("id", t.localNode()).build(),
          ViciMessage.builder().put("auth", "pubkey").put("id", t.peerNode())
              .list("cacerts", List.of(files.caCertificate().toString())).build()));
    }
    out.append("}\n");
    return out.toString();
  }

  private static final Pattern BARE = Pattern.compile("[A-Za-z0-9._:/@+-]+");

  /** swanctl.conf syntax for a message tree: one key per line (charon's parser wants that). */
  static void section(StringBuilder out, int depth, String name, ViciMessage body) {
    indent(out, depth).append(name).append(" {\n");
    for (Map.Entry<String, Object> e : body.entries().entrySet()) {
      Object v = e.getValue();
      if (v instanceof ViciMessage m) {
        section(out, depth + 1, e.getKey(), m);
      } else if (v instanceof List<?> items) {
        indent(out, depth + 1).append(e.getKey()).append(" = ");
        for (int i = 0; i < items.size(); i++) {
          out.append(i > 0 ? ", " : "").append(quote((String) items.get(i)));
        }
        out.append('\n');
      } else {
        indent(out, depth + 1).append(e.getKey()).append(" = ").append(quote((String) v)).append('\n');
      }
    }
    indent(out, depth).append("}\n");
  }

  private static String quote(String value) {
    if (BARE.matcher(value).matches()) {
      return value;
    }
    return '"' + value.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
  }

  private static StringBuilder indent(StringBuilder out, int depth) {
    return out.append("  ".repeat(depth));
  }
}

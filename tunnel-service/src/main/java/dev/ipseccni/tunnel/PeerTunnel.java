package dev.ipseccni.tunnel;

import java.util.Objects;

/**
 * One wanted tunnel: this node's block to one peer's block. Holds only what shapes the
 * charon connection, so a lease renewal (same node, address and block) is no change.
 *
 * @param connName connection (and CHILD SA) name in charon
 * @param localNode this node (local IKE identity)
 * @param peerNode the peer node (remote IKE identity)
 * @param localAddress underlay address here
 * @param peerAddress the peer's underlay address
 * @param localBlock own block, local_ts
 * @param peerBlock the peer's block, remote_ts
 * @param initiator whether this side starts the tunnel on load (the lower node name does), so
 *     the two sides do not open duplicate IKE SAs at once
 */
public record PeerTunnel(String connName, String localNode, String peerNode, String localAddress,
                         String peerAddress, String localBlock, String peerBlock, boolean initiator) {
  /** Every connection this service owns starts with it; others in charon are left alone. */
  public static final String PREFIX = "peer-";

  public PeerTunnel {
    Objects.requireNonNull(connName, "connName");
    Objects.requireNonNull(localNode, "localNode");
    Objects.requireNonNull(peerNode, "peerNode");
    Objects.requireNonNull(localAddress, "localAddress");
    Objects.requireNonNull(peerAddress, "peerAddress");
    Objects.requireNonNull(localBlock, "localBlock");
    Objects.requireNonNull(peerBlock, "peerBlock");
  }

  /** The shared-key id of this pair in charon. */
  public String sharedKeyId() {
    return "psk-" + connName;
  }

  /** The id of the pair's second key in charon while a cluster secret rotates (accepted, not offered). */
  public String acceptedKeyId() {
    return sharedKeyId() + "-accepted";
  }

  /**
   * A connection name safe in VICI and in swanctl.conf (where '.' separates sections):
   * the node name when it is plain, else a readable form plus a hash so names stay distinct.
   */
  public static String connName(String peerNode) {
    String safe = peerNode.replaceAll("[^A-Za-z0-9_-]", "_");
    if (safe.equals(peerNode)) {
      return PREFIX + peerNode;
    }
    return PREFIX + safe + "-" + Integer.toHexString(peerNode.hashCode());
  }
}

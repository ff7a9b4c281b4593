package dev.ipseccni.bus.message;

/**
 * The tunnel to a peer node does not come up, and charon said why (tunnel.failed). Published
 * when the reason is new for that tunnel, and again now and then while it lasts; a tunnel.up
 * ends it.
 *
 * @param peer peer node name
 * @param peerBlock the peer's block
 * @param reason one of a few words: "authentication failed", "no proposal chosen",
 *     "peer not responding", "traffic selectors unacceptable", "algorithm not supported"
 * @param detail charon's own log line that gave the reason
 * @param seenMillis when charon logged it (epoch milliseconds)
 */
public record TunnelFailure(String peer, String peerBlock, String reason, String detail, long seenMillis)
    implements Payload {}

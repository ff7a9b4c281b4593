package dev.ipseccni.bus.message;

/**
 * The tunnel to a peer node came up or went down.
 *
 * @param peer peer node name
 * @param peerBlock the peer's block
 * @param reason why it changed (for tunnel.down), empty otherwise
 */
public record TunnelEvent(String peer, String peerBlock, String reason) implements Payload {}

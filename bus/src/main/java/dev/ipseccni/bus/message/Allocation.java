package dev.ipseccni.bus.message;

/**
 * A pod's address on this node.
 *
 * @param address address with the block's prefix length, e.g. 10.128.1.2/24
 * @param gateway the bridge's address in the block, e.g. 10.128.1.1
 * @param block the node block, e.g. 10.128.1.0/24
 */
public record Allocation(String network, String containerId, String ifName, String address, String gateway,
                         String block) {}

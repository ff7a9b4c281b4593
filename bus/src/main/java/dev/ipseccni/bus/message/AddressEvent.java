package dev.ipseccni.bus.message;

/**
 * A pod address was allocated or released on the sending node.
 *
 * @param address the address with the block's prefix length, e.g. 10.128.1.2/24
 */
public record AddressEvent(String network, String containerId, String ifName, String address) implements Payload {}

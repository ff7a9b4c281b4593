package dev.ipseccni.bus.message;

/** Does (network, containerId, ifName) hold an address? The reply is an {@link Allocation} or a failure. */
public record CheckRequest(String network, String containerId, String ifName) {}

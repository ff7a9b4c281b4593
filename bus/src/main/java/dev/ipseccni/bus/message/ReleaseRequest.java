package dev.ipseccni.bus.message;

/** Release the address of (network, containerId, ifName); releasing what is not held succeeds. */
public record ReleaseRequest(String network, String containerId, String ifName) {}

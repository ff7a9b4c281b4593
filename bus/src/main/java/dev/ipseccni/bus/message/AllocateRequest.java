package dev.ipseccni.bus.message;

/** Request for the pod address of (network, containerId, ifName); repeated requests get the same address. */
public record AllocateRequest(String network, String containerId, String ifName) {}

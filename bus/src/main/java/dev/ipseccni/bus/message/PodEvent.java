package dev.ipseccni.bus.message;

/**
 * A pod was attached to or detached from the network by a CNI ADD or DEL.
 * Pod name and namespace are empty when the runtime did not pass them.
 */
public record PodEvent(String network, String containerId, String ifName, String podNamespace, String podName,
                       String address) implements Payload {}

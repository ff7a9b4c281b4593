package dev.ipseccni.ipam;

import dev.ipseccni.bus.message.Allocation;

/** A pod address as mirrored to the cluster's address map (key: the bare address), with the node holding it. */
public record MirroredAllocation(String node, Allocation allocation) {}

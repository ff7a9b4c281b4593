package dev.ipseccni.bus.message;

/** A block lease was acquired, renewed or released (the address says which). */
public record LeaseEvent(NodeBlockLease lease) implements Payload {}

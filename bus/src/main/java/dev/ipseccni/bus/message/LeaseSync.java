package dev.ipseccni.bus.message;

/**
 * Asks every node to announce its block lease again (see
 * {@link dev.ipseccni.bus.Addresses#LEASE_SYNC}).
 *
 * @param component the service that asks, for the log
 */
public record LeaseSync(String component) implements Payload {}

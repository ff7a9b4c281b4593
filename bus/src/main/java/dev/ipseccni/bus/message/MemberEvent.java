package dev.ipseccni.bus.message;

/**
 * A cluster member joined or left, as seen by the reporting node.
 *
 * @param member the member's node name (its Hazelcast member attribute)
 * @param address the member's cluster address host:port
 */
public record MemberEvent(String member, String address) implements Payload {}

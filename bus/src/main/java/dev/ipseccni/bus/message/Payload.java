package dev.ipseccni.bus.message;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;

/**
 * The body of a published {@link dev.ipseccni.bus.Event}. The JSON carries its type name,
 * so an observer (the event stream, the Kafka journal) can decode any event without
 * knowing the address it came from.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
    @JsonSubTypes.Type(value = LeaseEvent.class, name = "lease"),
    @JsonSubTypes.Type(value = AddressEvent.class, name = "address"),
    @JsonSubTypes.Type(value = PodEvent.class, name = "pod"),
    @JsonSubTypes.Type(value = TunnelEvent.class, name = "tunnel"),
    @JsonSubTypes.Type(value = TunnelFailure.class, name = "tunnel-failure"),
    @JsonSubTypes.Type(value = CharonCheck.class, name = "charon-check"),
    @JsonSubTypes.Type(value = FirewallEvent.class, name = "firewall"),
    @JsonSubTypes.Type(value = AgentEvent.class, name = "agent"),
    @JsonSubTypes.Type(value = MemberEvent.class, name = "member"),
    @JsonSubTypes.Type(value = LeaseSync.class, name = "lease-sync"),
    @JsonSubTypes.Type(value = SecretAnnouncement.class, name = "secret"),
})
public sealed interface Payload
    permits LeaseEvent, AddressEvent, PodEvent, TunnelEvent, TunnelFailure, CharonCheck, FirewallEvent, AgentEvent,
    MemberEvent, LeaseSync, SecretAnnouncement {}

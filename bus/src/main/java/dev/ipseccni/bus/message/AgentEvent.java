package dev.ipseccni.bus.message;

import java.util.List;

/** An agent started (with the services it runs) or is stopping. */
public record AgentEvent(String version, String underlayAddress, List<String> services) implements Payload {
  public AgentEvent {
    services = List.copyOf(services);
  }
}

package dev.ipseccni.bus.message;

import java.util.List;

/**
 * The firewall chains were asserted, or drift was found and repaired.
 *
 * @param chains the chains we own and asserted
 * @param repaired what was missing or changed before the repair (empty for a plain assert)
 */
public record FirewallEvent(List<String> chains, List<String> repaired) implements Payload {
  public FirewallEvent {
    chains = List.copyOf(chains);
    repaired = List.copyOf(repaired);
  }
}

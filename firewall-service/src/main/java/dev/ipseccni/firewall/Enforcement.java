package dev.ipseccni.firewall;

import java.util.List;

/**
 * What one assertion of the chains found and did.
 *
 * @param chains the chains we own, "table/CHAIN"
 * @param repaired what was missing or wrong and has been put right
 * @param notRepaired what was found wrong and deliberately left alone (a foreign rule above our
 *     jump that came back after we moved ours up once), for an operator to look at
 */
public record Enforcement(List<String> chains, List<String> repaired, List<String> notRepaired) {
  public Enforcement {
    chains = List.copyOf(chains);
    repaired = List.copyOf(repaired);
    notRepaired = List.copyOf(notRepaired);
  }

  public boolean changedSomething() {
    return !repaired.isEmpty();
  }
}

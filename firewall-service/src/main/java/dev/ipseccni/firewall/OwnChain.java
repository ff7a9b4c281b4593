package dev.ipseccni.firewall;

import java.util.List;

/**
 * One chain we own, the built-in chain that jumps to it (always from its first position) and
 * the rules it must hold, each written the way iptables-save prints it (without "-A CHAIN").
 */
public record OwnChain(String table, String name, String hook, List<String> rules) {
  public OwnChain {
    rules = List.copyOf(rules);
  }

  /** The jump from the hook, without "-A HOOK", as iptables-save prints it. */
  public String jump() {
    return "-m comment --comment " + OwnChains.MARK + " -j " + name;
  }

  /** "filter/IPSEC-CNI-FWD", how drift reports name the chain. */
  public String label() {
    return table + "/" + name;
  }
}

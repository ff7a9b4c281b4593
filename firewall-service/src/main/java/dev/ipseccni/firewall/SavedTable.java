package dev.ipseccni.firewall;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One table as {@code iptables-save -t TABLE} printed it: its chains in order, with their rules
 * written without the leading "-A CHAIN".
 */
public record SavedTable(String table, Map<String, List<String>> chains) {

  /** Every table in the output of a plain iptables-save; a table not printed is absent from the map. */
  public static Map<String, SavedTable> parseAll(String saveOutput) {
    Map<String, SavedTable> tables = new LinkedHashMap<>();
    for (String line : saveOutput.split("\n")) {
      if (line.startsWith("*")) {
        String table = line.substring(1).strip();
        tables.put(table, parse(table, saveOutput));
      }
    }
    return tables;
  }

  public static SavedTable parse(String table, String saveOutput) {
    Map<String, List<String>> chains = new LinkedHashMap<>();
    boolean inTable = false;
    for (String raw : saveOutput.split("\n")) {
      String line = raw.strip();
      if (line.startsWith("*")) {
        inTable = line.substring(1).equals(table);
      } else if (!inTable || line.isEmpty() || line.startsWith("#")) {
        continue;
      } else if (line.equals("COMMIT")) {
        inTable = false;
      } else if (line.startsWith(":")) {
        chains.putIfAbsent(line.substring(1).split(" ", 2)[0], new ArrayList<>());
      } else if (line.startsWith("-A ")) {
        String[] parts = line.split(" ", 3);
        chains.computeIfAbsent(parts[1], k -> new ArrayList<>()).add(parts.length > 2 ? parts[2] : "");
      }
    }
    chains.replaceAll((name, rules) -> List.copyOf(rules));
    return new SavedTable(table, Map.copyOf(chains));
  }

  public Optional<List<String>> chain(String name) {
    return Optional.ofNullable(chains.get(name));
  }

  /** The rules of a chain; empty for a chain that does not exist. */
  public List<String> rules(String name) {
    return chains.getOrDefault(name, List.of());
  }

  /** Whether a rule (without "-A CHAIN") jumps to the given chain. */
  public static boolean jumpsTo(String rule, String target) {
    return rule.endsWith("-j " + target) || rule.contains("-j " + target + " ");
  }
}

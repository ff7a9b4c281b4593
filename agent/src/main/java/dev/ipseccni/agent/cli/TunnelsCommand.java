package dev.ipseccni.agent.cli;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;

/**
 * {@code ipsec-cni tunnels}: the mesh, like {@code swanctl --list-sas} but for every pair of
 * nodes, with what each side last reported.
 */
@Command(name = "tunnels", description = "Tunnels of the mesh: each node pair, its state, what each side reports.")
public final class TunnelsCommand extends OperatorCommand {
  @Override
  int run(AgentApiClient agent) throws AgentApiClient.AgentUnreachable {
    JsonNode cluster = agent.get("/cluster");
    if (options.json()) {
      printJson(cluster.path("tunnels"));
      return 0;
    }
    java.util.Map<String, String> blocks = new java.util.HashMap<>();
    cluster.path("nodes").forEach(n -> blocks.put(text(n, "node"), text(n, "block")));
    TextTable table = new TextTable("NODE A", "NODE B", "STATE", "A SAYS", "B SAYS", "BLOCKS", "REASON");
    for (JsonNode t : cluster.path("tunnels")) {
      JsonNode a = t.path("fromA");
      JsonNode b = t.path("fromB");
      String reason = String.join("; ", java.util.stream.Stream.of(
          because(text(t, "a"), a), because(text(t, "b"), b)).filter(r -> !r.isEmpty()).toList());
      table.row(text(t, "a"), text(t, "b"), text(t, "state").toUpperCase(java.util.Locale.ROOT), says(a), says(b),
          blocks.getOrDefault(text(t, "a"), "?") + " === " + blocks.getOrDefault(text(t, "b"), "?"), reason);
    }
    table.print(System.out);
    return 0;
  }

  /** What a side says is wrong: charon's failure with its age (e.g. "node1: authentication failed 12s ago"), else its reason. */
  private static String because(String node, JsonNode report) {
    if (!text(report, "failure").isEmpty()) {
      return node + ": " + text(report, "failure") + " " + ago(report.path("failureMillis").asLong()) + " ago";
    }
    return text(report, "reason").isEmpty() ? "" : node + ": " + text(report, "reason");
  }

  private static String says(JsonNode report) {
    if (!report.isObject()) {
      return "";
    }
    return text(report, "state") + " " + ago(report.path("sinceMillis").asLong());
  }
}

package dev.ipseccni.agent.cli;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;

/** {@code ipsec-cni nodes}: every node this agent has seen on the bus, with its block. */
@Command(name = "nodes", description = "Nodes of the cluster: block, member, agent, pool use.")
public final class NodesCommand extends OperatorCommand {
  @Override
  int run(AgentApiClient agent) throws AgentApiClient.AgentUnreachable {
    JsonNode cluster = agent.get("/cluster");
    if (options.json()) {
      printJson(cluster.path("nodes"));
      return 0;
    }
    TextTable table = new TextTable("NODE", "ADDRESS", "BLOCK", "EPOCH", "MEMBER", "AGENT", "POOL", "LAST EVENT");
    for (JsonNode n : cluster.path("nodes")) {
      table.row(text(n, "node"), text(n, "underlayAddress"), text(n, "block"),
          n.path("epoch").asLong() == 0 ? "" : n.path("epoch").asText(), yesNo(n.path("member").asBoolean()),
          text(n, "agent"), n.path("addressesUsed").asLong() + "/" + n.path("poolSize").asLong(),
          "#" + n.path("lastSeq").asLong() + " " + ago(n.path("lastEventMillis").asLong()) + " ago");
    }
    table.print(System.out);
    return 0;
  }
}

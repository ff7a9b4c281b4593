package dev.ipseccni.agent.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ipseccni.bus.JsonRecordCodec;
import java.util.HashSet;
import java.util.Set;
import picocli.CommandLine.Command;

/**
 * {@code ipsec-cni pods}: pods of the cluster with their node and address. This node's
 * pods come from its IPAM (exact); other nodes' from the pod events seen since this agent
 * started.
 */
@Command(name = "pods", description = "Pods of the cluster: node, pod, container, interface, address.")
public final class PodsCommand extends OperatorCommand {
  @Override
  int run(AgentApiClient agent) throws AgentApiClient.AgentUnreachable {
    JsonNode state = agent.get("/state");
    JsonNode cluster = agent.get("/cluster");
    String self = text(state, "node");
    ArrayNode pods = JsonRecordCodec.MAPPER.createArrayNode();
    Set<String> own = new HashSet<>();
    for (JsonNode p : state.path("pods")) {
      ObjectNode row = ((ObjectNode) p.deepCopy()).put("node", self);
      pods.add(row);
      own.add(text(p, "containerId") + "/" + text(p, "ifName"));
    }
    for (JsonNode p : cluster.path("pods")) {
      boolean mine = text(p, "node").equals(self);
      if (!mine || !own.contains(text(p, "containerId") + "/" + text(p, "ifName"))) {
        if (!mine || !state.path("ipam").isObject()) {
          pods.add(p);
        }
      }
    }
    if (options.json()) {
      printJson(pods);
      return 0;
    }
    TextTable table = new TextTable("NODE", "POD", "CONTAINER", "IF", "ADDRESS");
    for (JsonNode p : pods) {
      String name = text(p, "podName").isEmpty() ? "" : text(p, "podNamespace") + "/" + text(p, "podName");
      String container = text(p, "containerId");
      table.row(text(p, "node"), name, container.length() > 12 ? container.substring(0, 12) : container,
          text(p, "ifName"), text(p, "address"));
    }
    table.print(System.out);
    return 0;
  }
}

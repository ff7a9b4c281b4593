package dev.ipseccni.agent.cli;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;

/** {@code ipsec-cni status}: this node at a glance, and why it is not ready if it is not. */
@Command(name = "status", description = "This node: readiness, lease, firewall, pods, tunnels.")
public final class StatusCommand extends OperatorCommand {
  @Override
  int run(AgentApiClient agent) throws AgentApiClient.AgentUnreachable {
    JsonNode state = agent.get("/state");
    if (options.json()) {
      printJson(state);
      return 0;
    }
    JsonNode lease = state.path("lease");
    JsonNode fw = state.path("firewall");
    long up = 0;
    long down = 0;
    for (JsonNode t : state.path("tunnels")) {
      if (text(t, "state").equals("up")) {
        up++;
      } else {
        down++;
      }
    }
    StringBuilder members = new StringBuilder();
    state.path("members").forEach(m -> members.append(members.length() == 0 ? "" : " ").append(m.asText()));
    TextTable summary = new TextTable("NODE", text(state, "node") + " (" + text(state, "underlayAddress") + ")");
    summary.row("READY", !state.path("ready").asBoolean() ? "NO"
        : text(state, "status").equals("degraded") ? "yes, DEGRADED" : "yes");
    state.path("degraded").forEach(d -> summary.row("DEGRADED", d.asText()));
    summary.row("LEASE", lease.has("block")
        ? text(lease, "block") + " (epoch " + text(lease, "epoch") + ", renewed " + ago(lease.path("renewedAtMillis").asLong()) + " ago)"
        : "none held");
    summary.row("MEMBERS", members + " (cluster " + text(state, "cluster") + ")");
    summary.row("FIREWALL", !fw.path("runs").asBoolean() ? "not run here"
        : (fw.path("ready").asBoolean() ? "asserted" : "NOT asserted: " + text(fw, "reason"))
            + ", repairs " + fw.path("repairs").asLong());
    summary.row("PODS", state.path("pods").size());
    summary.row("TUNNELS", up + " up, " + down + " not up");
    summary.print(System.out);
    System.out.println();
    TextTable components = new TextTable("SERVICE", "READY", "REASON");
    for (JsonNode c : state.path("components")) {
      StringBuilder reason = new StringBuilder(text(c, "reason"));
      c.path("degraded").forEach(d -> reason.append(reason.length() == 0 ? "" : "; ").append(d.asText()));
      components.row(text(c, "component"), yesNo(c.path("ready").asBoolean()), reason.toString());
    }
    components.print(System.out);
    return state.path("ready").asBoolean() ? 0 : 1;
  }
}

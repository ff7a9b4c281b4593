package dev.ipseccni.cni.plugin;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The plugin binary in Java: forwards one CNI execution to the node agent and prints its
 * answer. It depends on the JDK alone (this package only), so it starts as fast as a JVM
 * can; the shipped binary is the C client built from the same protocol, see bench/cni.
 */
public final class IpsecCniPlugin {
  private IpsecCniPlugin() {}

  public static void main(String[] args) throws IOException {
    String stdin = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
    PluginReply reply = run(PluginCall.of(System.getenv(), stdin), System.getenv(PluginProtocol.SOCKET_ENV));
    PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false,
        StandardCharsets.UTF_8);
    out.print(reply.stdout());
    out.flush();
    System.exit(reply.exitCode());
  }

  /** Everything main does except the process's own input and output. */
  public static PluginReply run(PluginCall call) {
    return run(call, null);
  }

  /** @param socketFromEnv the socket named by the environment, used when the config names none; may be null */
  public static PluginReply run(PluginCall call, String socketFromEnv) {
    String command = call.env("CNI_COMMAND");
    String latest = PluginProtocol.SUPPORTED_VERSIONS.get(PluginProtocol.SUPPORTED_VERSIONS.size() - 1);
    String asked = MiniJson.topLevelString(call.stdin(), "cniVersion", latest);
    if (command.equals("VERSION")) {
      return PluginReply.success(versionAnswer(asked));
    }
    if (isIpamCall(call.stdin())) {
      return answerAsIpam(command, call.stdin(), asked);
    }
    String fallback = socketFromEnv == null || socketFromEnv.isEmpty() ? PluginProtocol.DEFAULT_SOCKET : socketFromEnv;
    Path socket = Path.of(MiniJson.topLevelString(call.stdin(), PluginProtocol.SOCKET_KEY, fallback));
    try {
      return GatewayClient.exchange(socket, call);
    } catch (IOException unreachable) {
      return whenAgentUnreachable(socket, call, asked, unreachable);
    } catch (RuntimeException badReply) {
      return PluginReply.error(asked, PluginProtocol.CODE_BAD_AGENT_REPLY,
          "ipsec-cni agent at " + socket + " gave an invalid answer", String.valueOf(badReply.getMessage()));
    }
  }

  /** Called by the agent's bridge delegate as its IPAM plugin: answered from the config alone (see IPAM_TYPE). */
  static PluginReply answerAsIpam(String command, String stdin, String asked) {
    switch (command) {
      case "ADD" -> {
        Optional<String> result = MiniJson.memberText(stdin, "ipam", PluginProtocol.IPAM_RESULT_KEY)
            .filter(text -> text.startsWith("{"));
        return result.map(text -> PluginReply.success(text + "\n")).orElseGet(() -> PluginReply.error(asked,
            PluginProtocol.CODE_INVALID_NETWORK_CONFIG, "ipsec-cni as IPAM plugin: the config's ipam has no "
                + PluginProtocol.IPAM_RESULT_KEY + " object", "the ipsec-cni agent writes it when it runs the bridge plugin"));
      }
      case "DEL", "CHECK", "GC", "STATUS" -> {
        return PluginReply.success("");
      }
      default -> {
        return PluginReply.error(asked, PluginProtocol.CODE_INVALID_ENVIRONMENT,
            "ipsec-cni as IPAM plugin: unknown CNI_COMMAND '" + command + "'", "");
      }
    }
  }

  static boolean isIpamCall(String stdin) {
    try {
      return MiniJson.parse(stdin) instanceof java.util.Map<?, ?> config
          && config.get("ipam") instanceof java.util.Map<?, ?> ipam && PluginProtocol.IPAM_TYPE.equals(ipam.get("type"));
    } catch (IllegalArgumentException notJson) {
      return false;
    }
  }

  static String versionAnswer(String asked) {
    StringBuilder json = new StringBuilder("{\"cniVersion\":");
    MiniJson.quote(asked, json);
    json.append(",\"supportedVersions\":[");
    for (int i = 0; i < PluginProtocol.SUPPORTED_VERSIONS.size(); i++) {
      json.append(i == 0 ? "" : ",");
      MiniJson.quote(PluginProtocol.SUPPORTED_VERSIONS.get(i), json);
    }
    return json.append("]}\n").toString();
  }

  private static PluginReply whenAgentUnreachable(Path socket, PluginCall call, String asked, IOException cause) {
    String why = "ipsec-cni agent not reachable at " + socket;
    switch (call.env("CNI_COMMAND")) {
      case "DEL" -> {
        try {
          PendingDeletes.record(PluginProtocol.pendingDelDir(socket), call);
          return PluginReply.success("");
        } catch (IOException e) {
          return PluginReply.error(asked, PluginProtocol.CODE_IO_FAILURE,
              why + " and the DEL could not be recorded for later", String.valueOf(e.getMessage()));
        }
      }
      case "ADD" -> {
        return PluginReply.error(asked, PluginProtocol.CODE_TRY_AGAIN_LATER, why, String.valueOf(cause));
      }
      default -> {
        return PluginReply.error(asked, PluginProtocol.CODE_NOT_AVAILABLE, why, String.valueOf(cause));
      }
    }
  }
}

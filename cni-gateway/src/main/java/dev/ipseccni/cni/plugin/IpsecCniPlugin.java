package dev.ipseccni.cni.plugin;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

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

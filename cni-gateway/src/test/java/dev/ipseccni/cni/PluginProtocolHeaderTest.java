package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ipseccni.cni.plugin.PluginProtocol;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The C client's protocol.h says what PluginProtocol says: one protocol, two clients. */
class PluginProtocolHeaderTest {
  @Test
  void cHeaderMirrorsTheJavaDefinition() throws IOException {
    Map<String, String> defines = CHeader.defines("protocol.h", "PROTO_");
    Map<String, String> expected = new HashMap<>();
    expected.put("PROTO_PATH", q(PluginProtocol.PATH));
    expected.put("PROTO_METHOD", q(PluginProtocol.METHOD));
    expected.put("PROTO_CONTENT_TYPE", q(PluginProtocol.CONTENT_TYPE));
    expected.put("PROTO_EXIT_CODE_HEADER", q(PluginProtocol.EXIT_CODE_HEADER));
    expected.put("PROTO_SOCKET_KEY", q(PluginProtocol.SOCKET_KEY));
    expected.put("PROTO_DEFAULT_SOCKET", q(PluginProtocol.DEFAULT_SOCKET));
    expected.put("PROTO_SOCKET_ENV", q(PluginProtocol.SOCKET_ENV));
    expected.put("PROTO_PENDING_DEL_DIR_NAME", q(PluginProtocol.PENDING_DEL_DIR_NAME));
    expected.put("PROTO_PENDING_DEL_SUFFIX", q(PluginProtocol.PENDING_DEL_SUFFIX));
    expected.put("PROTO_ENV_PREFIX", q(PluginProtocol.ENV_PREFIX));
    expected.put("PROTO_INTERFACE_PRESENT_KEY", q(PluginProtocol.INTERFACE_PRESENT_KEY));
    expected.put("PROTO_IPAM_TYPE", q(PluginProtocol.IPAM_TYPE));
    expected.put("PROTO_IPAM_RESULT_KEY", q(PluginProtocol.IPAM_RESULT_KEY));
    expected.put("PROTO_SUPPORTED_VERSIONS", q(PluginProtocol.SUPPORTED_VERSIONS.stream()
        .map(v -> "\\\"" + v + "\\\"").collect(Collectors.joining(","))));
    expected.put("PROTO_LATEST_VERSION", q(PluginProtocol.SUPPORTED_VERSIONS.get(
        PluginProtocol.SUPPORTED_VERSIONS.size() - 1)));
    expected.put("PROTO_CODE_INCOMPATIBLE_VERSION", Integer.toString(PluginProtocol.CODE_INCOMPATIBLE_VERSION));
    expected.put("PROTO_CODE_INVALID_ENVIRONMENT", Integer.toString(PluginProtocol.CODE_INVALID_ENVIRONMENT));
    expected.put("PROTO_CODE_IO_FAILURE", Integer.toString(PluginProtocol.CODE_IO_FAILURE));
    expected.put("PROTO_CODE_DECODE_FAILURE", Integer.toString(PluginProtocol.CODE_DECODE_FAILURE));
    expected.put("PROTO_CODE_INVALID_NETWORK_CONFIG", Integer.toString(PluginProtocol.CODE_INVALID_NETWORK_CONFIG));
    expected.put("PROTO_CODE_TRY_AGAIN_LATER", Integer.toString(PluginProtocol.CODE_TRY_AGAIN_LATER));
    expected.put("PROTO_CODE_NOT_AVAILABLE", Integer.toString(PluginProtocol.CODE_NOT_AVAILABLE));
    expected.put("PROTO_CODE_BAD_AGENT_REPLY", Integer.toString(PluginProtocol.CODE_BAD_AGENT_REPLY));
    assertEquals(expected, defines);
  }

  @Test
  void pendingDelFileNamesAreTheSameInBothClients() {
    // The C client hex-encodes "containerId\nifName" the same way; the agent-down test checks the file it wrote.
    assertEquals("del-6162630a65746830.json", PluginProtocol.pendingDelFileName("abc", "eth0"));
  }

  private static String q(String s) {
    return "\"" + s + "\"";
  }
}

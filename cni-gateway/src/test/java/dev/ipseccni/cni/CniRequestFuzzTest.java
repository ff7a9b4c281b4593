package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.ipseccni.cni.plugin.PluginCall;
import dev.ipseccni.cni.plugin.PluginProtocol;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The gateway's request parsing under arbitrary input: whatever the environment and stdin,
 * the answer is a parsed request or a {@link CniError} with a spec code, never another
 * exception. In a plain build the inputs under {@code CniRequestFuzzTestInputs/} are
 * replayed; {@code JAZZER_FUZZ=1} fuzzes (see the README).
 *
 * <p>An input is readable text: {@code NAME=VALUE} lines, a blank line, then stdin.
 */
class CniRequestFuzzTest {
  /** The spec's codes; ours are 100 and up. */
  static final Set<Integer> SPEC_CODES = Set.of(1, 2, 3, 4, 5, 6, 7, 11, 50, 51);

  static boolean specCode(int code) {
    return SPEC_CODES.contains(code) || code >= 100;
  }

  record Input(Map<String, String> env, String stdin) {
    static Input of(byte[] bytes) {
      String text = new String(bytes, StandardCharsets.UTF_8);
      int blank = text.indexOf("\n\n");
      String head = blank < 0 ? text : text.substring(0, blank);
      String stdin = blank < 0 ? "" : text.substring(blank + 2);
      Map<String, String> env = new LinkedHashMap<>();
      for (String line : head.split("\n")) {
        int eq = line.indexOf('=');
        if (eq > 0) {
          env.put(line.substring(0, eq), line.substring(eq + 1));
        }
      }
      return new Input(env, stdin);
    }
  }

  @FuzzTest(maxDuration = "60s")
  void requestIsParsedOrRefusedWithASpecCode(byte[] bytes) {
    Input input = Input.of(bytes);
    // What the gateway answers with on any failure must itself never throw.
    NetworkConfig.versionForErrors(input.stdin(), "1.1.0");
    CniRequest request;
    try {
      request = CniRequest.parse(input.env(), input.stdin(), PluginProtocol.SUPPORTED_VERSIONS);
    } catch (CniError e) {
      assertTrue(specCode(e.code()), "code " + e.code() + " is not a CNI code: " + e);
      return;
    }
    // What the commands read later was validated here: none of it may throw now.
    NetworkConfig config = request.config();
    assertTrue(PluginProtocol.SUPPORTED_VERSIONS.contains(config.cniVersion()), config.cniVersion());
    config.prevResult().ifPresent(prev -> prev.toJson(config.cniVersion()));
    config.runtimeConfig("mac");
    if (request.command() == CniCommand.GC) {
      config.validAttachments();
    }
    CniEnvironment env = request.env();
    if (request.command() == CniCommand.ADD || request.command() == CniCommand.DEL
        || request.command() == CniCommand.CHECK) {
      assertTrue(env.containerId().matches("[A-Za-z0-9][A-Za-z0-9_.\\-]*"), env.containerId());
      assertTrue(env.ifName().chars().noneMatch(c -> c == '/' || c < 0x20 || c == 0x7f), env.ifName());
      assertTrue(!env.ifName().equals(".") && !env.ifName().equals(".."), env.ifName());
    }
  }

  /** The outer request body (what the plugin sends, what a pending-DEL file holds): a call or IllegalArgumentException. */
  @FuzzTest(maxDuration = "60s")
  void requestBodyIsACallOrIllegalArgument(byte[] bytes) {
    PluginCall call;
    try {
      call = PluginCall.fromJson(new String(bytes, StandardCharsets.UTF_8));
    } catch (IllegalArgumentException e) {
      return;
    }
    assertEquals(call, PluginCall.fromJson(call.toJson()), "a call survives its own encoding");
    // Whatever the runtime put in the names, the pending-DEL file stays in its directory.
    Path dir = Path.of("/run/ipsec-cni/pending-del");
    String name = PluginProtocol.pendingDelFileName(call.env("CNI_CONTAINERID"), call.env("CNI_IFNAME"));
    assertTrue(name.matches("del-[0-9a-f]*\\.json"), name);
    assertEquals(dir, dir.resolve(name).normalize().getParent());
  }
}

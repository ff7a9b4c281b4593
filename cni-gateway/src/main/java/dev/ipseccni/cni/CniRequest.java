package dev.ipseccni.cni;

import java.util.List;
import java.util.Map;

/**
 * One CNI call as the gateway serves it, parsed and validated from the plugin's two inputs
 * (its CNI_* environment and its stdin) and nothing else: no I/O, no bus, no clock. Every
 * way the inputs can be wrong is a {@link CniError} with a spec code here, before any
 * command runs (VERSION is answered before parsing, by the plugin's own code).
 */
public record CniRequest(CniEnvironment env, NetworkConfig config) {

  /**
   * The network config first (its version decides the error format), then the environment;
   * GC's attachment list is read here too, so a bad one is a 7, not a failure mid-command.
   *
   * @throws CniError 1, 4, 6 or 7 for inputs a runtime should not have sent
   */
  public static CniRequest parse(Map<String, String> env, String stdin, List<String> supportedVersions) {
    CniCommand.parse(env.get("CNI_COMMAND"));
    NetworkConfig config = NetworkConfig.parse(stdin, supportedVersions);
    CniEnvironment environment = CniEnvironment.from(env);
    if (environment.command() == CniCommand.GC) {
      config.validAttachments();
    }
    return new CniRequest(environment, config);
  }

  public CniCommand command() {
    return env.command();
  }
}

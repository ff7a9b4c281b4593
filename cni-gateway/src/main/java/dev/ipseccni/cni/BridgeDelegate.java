package dev.ipseccni.cni;

import dev.ipseccni.bus.message.Allocation;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The datapath: the reference {@code bridge} plugin, found in CNI_PATH, run with the
 * address IPAM gave as {@code static} IPAM. It speaks at most 1.0.0, so it is asked in
 * {@code min(asked, 1.0.0)} and its result converted. Every method blocks (it execs):
 * call it from a worker, never the event loop.
 */
final class BridgeDelegate {
  static final String PLUGIN = "bridge";
  static final long TIMEOUT_SECONDS = 60;

  private final CniGatewaySettings settings;
  private final ProcessSpawner spawner;

  BridgeDelegate(CniGatewaySettings settings, ProcessSpawner spawner) {
    this.settings = settings;
    this.spawner = spawner;
  }

  /** The delegate's answer: exit code, stdout (a result or an error), stderr. */
  record Outcome(int exitCode, String stdout, String stderr) {
    boolean ok() {
      return exitCode == 0;
    }

    CniError asError(String what) {
      String details = stdout.isBlank() ? stderr.strip() : stdout.strip();
      try {
        JsonObject err = new JsonObject(stdout);
        details = "bridge code " + err.getValue("code") + ": " + err.getString("msg", "")
            + (err.getString("details", "").isEmpty() ? "" : " (" + err.getString("details") + ")");
      } catch (RuntimeException notJson) {
        // keep the raw text
      }
      return new CniError(CniError.DATAPATH_FAILED, what + " failed in the bridge plugin", details);
    }
  }

  Outcome add(CniEnvironment env, NetworkConfig config, Allocation allocation) {
    String version = CniVersions.min(config.cniVersion(), CniVersions.DELEGATE_MAX);
    return exec("ADD", env, delegateConfig(version, config, Optional.of(allocation)));
  }

  Outcome del(CniEnvironment env, NetworkConfig config, Optional<Allocation> allocation) {
    String version = CniVersions.min(config.cniVersion(), CniVersions.DELEGATE_MAX);
    return exec("DEL", env, delegateConfig(version, config, allocation));
  }

  Outcome check(CniEnvironment env, NetworkConfig config, Allocation allocation, CniResult prevResult) {
    String version = CniVersions.max(CniVersions.CHECK_MIN,
        CniVersions.min(config.cniVersion(), CniVersions.DELEGATE_MAX));
    JsonObject conf = delegateConfig(version, config, Optional.of(allocation));
    conf.put("prevResult", prevResult.toJson(version));
    return exec("CHECK", env, conf);
  }

  /** Does the pod's namespace already have this interface? (ADD must then fail, and must not clean it up.) */
  boolean interfaceExists(String netns, String ifName) {
    if (!Files.exists(Path.of(netns))) {
      throw new CniError(CniError.INVALID_ENVIRONMENT, "CNI_NETNS " + netns + " does not exist");
    }
    Outcome probe = run(List.of("nsenter", "--net=" + netns, "ip", "link", "show", "dev", ifName), Map.of(), "");
    return probe.ok();
  }

  JsonObject delegateConfig(String version, NetworkConfig config, Optional<Allocation> allocation) {
    JsonObject ipam = new JsonObject().put("type", "static");
    allocation.ifPresent(a -> ipam
        .put("addresses", new JsonArray().add(new JsonObject().put("address", a.address()).put("gateway", a.gateway())))
        .put("routes", new JsonArray().add(new JsonObject().put("dst", "0.0.0.0/0"))));
    JsonObject conf = new JsonObject()
        .put("cniVersion", version)
        .put("name", config.name())
        .put("type", PLUGIN)
        .put("bridge", settings.bridgeName())
        .put("isGateway", true)
        .put("mtu", config.mtu().orElse(settings.mtu()))
        .put("ipam", ipam);
    config.runtimeConfig("mac").ifPresent(mac -> conf.put("runtimeConfig", new JsonObject().put("mac", mac)));
    return conf;
  }

  private Outcome exec(String command, CniEnvironment env, JsonObject conf) {
    Path plugin = find(env.path());
    List<String> argv = new ArrayList<>(settings.delegateCommandPrefix());
    argv.add(plugin.toString());
    // CNI_ARGS stays empty: the address comes from IPAM, not from a runtime's IP= (static would honour it).
    Map<String, String> cniEnv = Map.of(
        "CNI_COMMAND", command,
        "CNI_CONTAINERID", env.containerId(),
        "CNI_NETNS", env.netns(),
        "CNI_IFNAME", env.ifName(),
        "CNI_ARGS", "",
        "CNI_PATH", env.path());
    return run(argv, cniEnv, conf.encode());
  }

  private Path find(String cniPath) {
    return locate(cniPath).orElseThrow(() -> new CniError(CniError.INVALID_NETWORK_CONFIG,
        "the reference plugin '" + PLUGIN + "' was not found in CNI_PATH " + cniPath));
  }

  /** The delegate plugin in the first CNI_PATH directory that has it executable, if any does. */
  Optional<Path> locate(String cniPath) {
    for (String dir : cniPath.split(":")) {
      if (dir.isEmpty()) {
        continue;
      }
      Path candidate = Path.of(dir, PLUGIN);
      if (Files.isExecutable(candidate)) {
        return Optional.of(candidate);
      }
    }
    return Optional.empty();
  }

  Outcome run(List<String> argv, Map<String, String> env, String stdin) {
    return spawner.run(argv, env, stdin, Duration.ofSeconds(TIMEOUT_SECONDS));
  }
}

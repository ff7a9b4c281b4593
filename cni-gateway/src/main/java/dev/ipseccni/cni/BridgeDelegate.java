package dev.ipseccni.cni;

import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.cni.plugin.PluginProtocol;
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
 * address IPAM gave as its IPAM plugin's answer (see {@link #ipam}). It speaks at most 1.0.0, so it is asked in
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
    return exec("ADD", env, delegateConfig(version, config, ipam(env.path(), version, allocation)));
  }

  /**
   * Layer 2 only ({@code "ipam": {}}): the bridge plugin then runs no IPAM plugin on DEL.
   * It would have nothing to do: the agent releases the address itself, after this DEL.
   */
  Outcome del(CniEnvironment env, NetworkConfig config) {
    String version = CniVersions.min(config.cniVersion(), CniVersions.DELEGATE_MAX);
    return exec("DEL", env, delegateConfig(version, config, new JsonObject()));
  }

  Outcome check(CniEnvironment env, NetworkConfig config, Allocation allocation, CniResult prevResult) {
    String version = CniVersions.max(CniVersions.CHECK_MIN,
        CniVersions.min(config.cniVersion(), CniVersions.DELEGATE_MAX));
    JsonObject conf = delegateConfig(version, config, ipam(env.path(), version, allocation));
    conf.put("prevResult", prevResult.toJson(version));
    return exec("CHECK", env, conf);
  }

  /**
   * How the bridge plugin learns the address IPAM gave. Our own plugin binary, when CNI_PATH
   * has it, is the IPAM plugin: it prints the result written here and is gone in about a
   * millisecond (PluginProtocol.IPAM_TYPE). Otherwise the reference {@code static} plugin,
   * which does the same from its own config but costs a Go program's start (≈ 10 ms here)
   * on every ADD. Both give bridge the same address, gateway and default route.
   */
  JsonObject ipam(String cniPath, String version, Allocation allocation) {
    if (locate(cniPath, PluginProtocol.IPAM_TYPE).isPresent()) {
      CniResult granted = new CniResult(List.of(), List.of(new CniResult.Ip(allocation.address(), allocation.gateway(),
          -1)), List.of(new CniResult.Route(DEFAULT_ROUTE, "")), null);
      return new JsonObject().put("type", PluginProtocol.IPAM_TYPE)
          .put(PluginProtocol.IPAM_RESULT_KEY, granted.toJson(version));
    }
    return new JsonObject().put("type", "static")
        .put("addresses", new JsonArray().add(new JsonObject().put("address", allocation.address())
            .put("gateway", allocation.gateway())))
        .put("routes", new JsonArray().add(new JsonObject().put("dst", DEFAULT_ROUTE)));
  }

  private static final String DEFAULT_ROUTE = "0.0.0.0/0";

  /** Does the pod's namespace already have this interface? (ADD must then fail, and must not clean it up.) */
  boolean interfaceExists(String netns, String ifName) {
    if (!Files.exists(Path.of(netns))) {
      throw new CniError(CniError.INVALID_ENVIRONMENT, "CNI_NETNS " + netns + " does not exist");
    }
    Outcome probe = run(List.of("nsenter", "--net=" + netns, "ip", "link", "show", "dev", ifName), Map.of(), "");
    return probe.ok();
  }

  JsonObject delegateConfig(String version, NetworkConfig config, JsonObject ipam) {
    JsonObject conf = new JsonObject()
        .put("cniVersion", version)
        .put("name", config.name())
        .put("type", PLUGIN)
        .put("bridge", settings.bridgeName())
        .put("isGateway", true)
        .put("mtu", config.mtu().orElse(settings.mtu()))
        .put("ipam", ipam);
    config.runtimeConfig(Conflist.MAC_CAPABILITY).ifPresent(mac -> conf.put("runtimeConfig", new JsonObject().put("mac", mac)));
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
    return locate(cniPath, PLUGIN).orElseThrow(() -> new CniError(CniError.INVALID_NETWORK_CONFIG,
        "the reference plugin '" + PLUGIN + "' was not found in CNI_PATH " + cniPath));
  }

  /** The named plugin in the first CNI_PATH directory that has it executable, if any does. */
  static Optional<Path> locate(String cniPath, String plugin) {
    for (String dir : cniPath.split(":")) {
      if (dir.isEmpty()) {
        continue;
      }
      Path candidate = Path.of(dir, plugin);
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

package dev.ipseccni.cni;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import dev.ipseccni.cni.plugin.PluginProtocol;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * The network configuration list the runtime reads from its conf dir (/etc/cni/net.d).
 * Written only once the node is ready (a runtime starts pods as soon as it sees one), and
 * atomically: the runtime must never read half a file. cniVersion 1.0.0 by default, because
 * libcni 1.1 runtimes (podman 4, containerd 1.6 and 1.7) reject a 1.1.0 result; an operator whose
 * runtimes have libcni 1.2 or later may choose 1.1.0, which makes them send GC and STATUS (the
 * chained portmap must then support 1.1.0 too: the reference plugins 1.1.1 do not).
 */
public final class Conflist {
  public static final String FILE_NAME = "10-ipsec-cni.conflist";
  public static final String DEFAULT_CNI_VERSION = "1.0.0";
  /** The cniVersions a conflist may say: those with GC/STATUS or without, both fully served. */
  public static final java.util.List<String> VERSIONS = java.util.List.of("1.0.0", "1.1.0");
  public static final String PLUGIN_TYPE = "ipsec-cni";
  /** The runtime's requested pod address ({@code runtimeConfig.ips}), see {@link RequestedAddress}. */
  public static final String IPS_CAPABILITY = "ips";
  /** The runtime's requested MAC address of the pod interface ({@code runtimeConfig.mac}, podman --mac-address), passed to bridge. */
  public static final String MAC_CAPABILITY = "mac";
  /** The reference plugin chained after ours for hostPort ({@code runtimeConfig.portMappings}). */
  public static final String PORTMAP_TYPE = "portmap";
  public static final String PORT_MAPPINGS_CAPABILITY = "portMappings";

  private Conflist() {}

  public static JsonObject render(CniGatewaySettings settings) {
    JsonObject plugin = new JsonObject()
        .put("type", PLUGIN_TYPE)
        .put(PluginProtocol.SOCKET_KEY, settings.socketPath().toString())
        .put("mtu", settings.mtu())
        // libcni passes runtimeConfig entries only for the capabilities a plugin declares.
        .put("capabilities", new JsonObject().put(IPS_CAPABILITY, true).put(MAC_CAPABILITY, true));
    // hostPort: kubelet and podman hand port mappings only to a plugin declaring portMappings;
    // the reference portmap writes the DNAT rules from our result (docs/decisions.md).
    JsonObject portmap = new JsonObject()
        .put("type", PORTMAP_TYPE)
        .put("capabilities", new JsonObject().put(PORT_MAPPINGS_CAPABILITY, true));
    return new JsonObject()
        .put("cniVersion", settings.conflistVersion())
        .put("name", settings.networkName())
        .put("plugins", new JsonArray().add(plugin).add(portmap));
  }

  /** Writes (temp file, fsync, rename) {@link #FILE_NAME} into confDir; blocks. Returns the file. */
  public static Path write(Path confDir, CniGatewaySettings settings) throws IOException {
    Files.createDirectories(confDir);
    Path target = confDir.resolve(FILE_NAME);
    // A name the runtime ignores (it reads *.conf, *.conflist, *.json) until the rename.
    Path temp = confDir.resolve("." + FILE_NAME + ".tmp");
    Files.writeString(temp, render(settings).encodePrettily() + "\n", StandardCharsets.UTF_8);
    try (FileChannel file = FileChannel.open(temp, StandardOpenOption.WRITE)) {
      file.force(true);
    }
    Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    return target;
  }

  /** Removes the conflist (the agent calls it when it stops being able to serve ADD for good). */
  public static void remove(Path confDir) throws IOException {
    Files.deleteIfExists(confDir.resolve(FILE_NAME));
  }
}

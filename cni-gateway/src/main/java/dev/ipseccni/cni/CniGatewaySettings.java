package dev.ipseccni.cni;

import dev.ipseccni.cni.plugin.PluginProtocol;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * Everything the CNI gateway of one node needs, validated once at construction.
 *
 * @param nodeName this node (bus addresses carry it)
 * @param socketPath the Unix socket the plugin binary connects to (the conflist's agentSocket)
 * @param networkName the network name written into the conflist
 * @param bridgeName the node's bridge, e.g. cni0
 * @param mtu pod interface MTU when the network config names none
 * @param pendingDelDir where the plugin leaves DELs it could not deliver; the default is
 *     {@link PluginProtocol#pendingDelDir} of the socket, which is where the plugin looks
 * @param supportedVersions the CNI versions we answer
 * @param readinessComponents the components (Addresses.IPAM, TUNNEL, FIREWALL …) that must
 *     report ready before ADD is accepted and STATUS says 0
 * @param delegateCommandPrefix what runs the delegate plugin: empty on a real node; in the
 *     netns lab, e.g. [ip, netns, exec, NODE], so the bridge lands in the node's namespace
 * @param busTimeout how long to wait for IPAM and status answers
 * @param replayInterval how often pending DELs are looked for (also once at start)
 * @param conflistVersion the cniVersion of the conflist written for runtimes ({@link Conflist#VERSIONS})
 */
public record CniGatewaySettings(String nodeName, Path socketPath, String networkName, String bridgeName, int mtu,
                                 Path pendingDelDir, List<String> supportedVersions,
                                 List<String> readinessComponents, List<String> delegateCommandPrefix,
                                 Duration busTimeout, Duration replayInterval, String conflistVersion) {

  public static final String DEFAULT_NETWORK = "ipsec-cni";
  public static final String DEFAULT_BRIDGE = "cni0";

  public CniGatewaySettings {
    Objects.requireNonNull(nodeName, "nodeName");
    Objects.requireNonNull(socketPath, "socketPath");
    Objects.requireNonNull(networkName, "networkName");
    Objects.requireNonNull(bridgeName, "bridgeName");
    Objects.requireNonNull(pendingDelDir, "pendingDelDir");
    supportedVersions = List.copyOf(supportedVersions);
    readinessComponents = List.copyOf(readinessComponents);
    delegateCommandPrefix = List.copyOf(delegateCommandPrefix);
    Objects.requireNonNull(busTimeout, "busTimeout");
    Objects.requireNonNull(replayInterval, "replayInterval");
    if (nodeName.isBlank()) {
      throw new IllegalArgumentException("nodeName must not be blank");
    }
    if (bridgeName.isEmpty() || bridgeName.length() > 15) {
      throw new IllegalArgumentException("bridgeName '" + bridgeName + "' is not a valid interface name");
    }
    if (mtu < 576 || mtu > 65535) {
      throw new IllegalArgumentException("mtu " + mtu + " is outside 576..65535");
    }
    if (!supportedVersions.contains("1.0.0") || supportedVersions.stream().anyMatch(
        v -> !PluginProtocol.SUPPORTED_VERSIONS.contains(v))) {
      throw new IllegalArgumentException("supportedVersions " + supportedVersions + " must include 1.0.0 and lie within "
          + PluginProtocol.SUPPORTED_VERSIONS);
    }
    if (busTimeout.isNegative() || busTimeout.isZero() || replayInterval.isNegative() || replayInterval.isZero()) {
      throw new IllegalArgumentException("busTimeout and replayInterval must be positive");
    }
    if (!Conflist.VERSIONS.contains(conflistVersion)) {
      throw new IllegalArgumentException("conflistVersion '" + conflistVersion + "' is not one of " + Conflist.VERSIONS);
    }
  }

  /** The conflist's cniVersion {@link Conflist#DEFAULT_CNI_VERSION}. */
  public CniGatewaySettings(String nodeName, Path socketPath, String networkName, String bridgeName, int mtu,
                            Path pendingDelDir, List<String> supportedVersions, List<String> readinessComponents,
                            List<String> delegateCommandPrefix, Duration busTimeout, Duration replayInterval) {
    this(nodeName, socketPath, networkName, bridgeName, mtu, pendingDelDir, supportedVersions, readinessComponents,
        delegateCommandPrefix, busTimeout, replayInterval, Conflist.DEFAULT_CNI_VERSION);
  }

  public CniGatewaySettings withConflistVersion(String version) {
    return new CniGatewaySettings(nodeName, socketPath, networkName, bridgeName, mtu, pendingDelDir, supportedVersions,
        readinessComponents, delegateCommandPrefix, busTimeout, replayInterval, version);
  }

  /** The usual settings for a node: default socket, network, bridge, versions; the given MTU and components. */
  public static CniGatewaySettings forNode(String nodeName, int mtu, List<String> readinessComponents) {
    return forNode(nodeName, Path.of(PluginProtocol.DEFAULT_SOCKET), mtu, readinessComponents, List.of());
  }

  public static CniGatewaySettings forNode(String nodeName, Path socketPath, int mtu, List<String> readinessComponents,
                                           List<String> delegateCommandPrefix) {
    return new CniGatewaySettings(nodeName, socketPath, DEFAULT_NETWORK, DEFAULT_BRIDGE, mtu,
        PluginProtocol.pendingDelDir(socketPath), PluginProtocol.SUPPORTED_VERSIONS, readinessComponents,
        delegateCommandPrefix, Duration.ofSeconds(5), Duration.ofSeconds(30));
  }
}

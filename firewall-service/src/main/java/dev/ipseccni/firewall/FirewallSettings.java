package dev.ipseccni.firewall;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Everything the firewall of one node needs to know. Values arrive as text from the agent's
 * configuration and are checked by {@link #errors()}, which names every bad value at once.
 *
 * @param nodeName this node, as in its block lease
 * @param bridge the local pod bridge, e.g. cni0
 * @param ownBlock this node's pod block, e.g. 10.128.1.0/24; empty to learn it from the own lease
 * @param clusterCidr every pod block lies inside it, e.g. 10.128.0.0/16
 * @param datapath how ESP is done, which decides how a protected packet is recognised
 * @param tunnelInterface the TUN interface of the libipsec datapath (ipsec0); unused with the kernel datapath
 * @param checkInterval how often the chains are compared with what they should be
 * @param commandPrefix prepended to every command, e.g. [ip, netns, exec, NODE] in a lab; empty on a real node
 * @param iptablesRestore path of iptables-restore
 * @param iptablesSave path of iptables-save
 * @param rulesetMonitor a command that prints a line whenever the ruleset changes (e.g. [nft, monitor]);
 *     empty to rely on the periodic check alone
 * @param controlPlanePorts the agents' TCP ports (Hazelcast's and the event bus's): pods may not
 *     open connections to them, on this node or another (a pod's traffic to a node address is
 *     masqueraded to its node's address, so the other nodes cannot tell it from its agent)
 * @param controlPlaneOverIpsec kernel datapath only: those ports accept only what arrived through a
 *     host-to-host (transport-mode) IPsec SA, and nothing leaves for them in clear
 */
public record FirewallSettings(
    String nodeName,
    String bridge,
    String ownBlock,
    String clusterCidr,
    Datapath datapath,
    String tunnelInterface,
    Duration checkInterval,
    List<String> commandPrefix,
    String iptablesRestore,
    String iptablesSave,
    List<String> rulesetMonitor,
    List<Integer> controlPlanePorts,
    boolean controlPlaneOverIpsec) {

  public static final String DEFAULT_BRIDGE = "cni0";
  public static final String DEFAULT_CLUSTER_CIDR = "10.128.0.0/16";
  public static final String DEFAULT_TUNNEL_INTERFACE = "ipsec0";
  public static final Duration DEFAULT_CHECK_INTERVAL = Duration.ofSeconds(5);
  /** Below this the periodic check would cost more than it protects. */
  public static final Duration MIN_CHECK_INTERVAL = Duration.ofMillis(100);

  private static final Pattern INTERFACE_NAME = Pattern.compile("[A-Za-z0-9_.:-]{1,15}");
  private static final Pattern NODE_NAME = Pattern.compile("[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?");

  public FirewallSettings {
    commandPrefix = List.copyOf(commandPrefix);
    rulesetMonitor = List.copyOf(rulesetMonitor);
    controlPlanePorts = List.copyOf(new java.util.TreeSet<>(controlPlanePorts));
  }

  /** Without the control plane inside IPsec. */
  public FirewallSettings(String nodeName, String bridge, String ownBlock, String clusterCidr, Datapath datapath,
      String tunnelInterface, Duration checkInterval, List<String> commandPrefix, String iptablesRestore,
      String iptablesSave, List<String> rulesetMonitor, List<Integer> controlPlanePorts) {
    this(nodeName, bridge, ownBlock, clusterCidr, datapath, tunnelInterface, checkInterval, commandPrefix,
        iptablesRestore, iptablesSave, rulesetMonitor, controlPlanePorts, false);
  }

  /** Hazelcast's and the event bus's default ports. */
  public static final List<Integer> DEFAULT_CONTROL_PLANE_PORTS = List.of(5701, 5702);

  /** The product defaults: kernel datapath, cni0, 10.128.0.0/16, 5 s, iptables from PATH, nft monitor, 5701/5702. */
  public static FirewallSettings defaults(String nodeName) {
    return new FirewallSettings(nodeName, DEFAULT_BRIDGE, "", DEFAULT_CLUSTER_CIDR, Datapath.KERNEL,
        DEFAULT_TUNNEL_INTERFACE, DEFAULT_CHECK_INTERVAL, List.of(), "iptables-restore", "iptables-save",
        List.of("nft", "monitor"), DEFAULT_CONTROL_PLANE_PORTS);
  }

  /** Every problem with these settings, in words an operator can act on; empty when they are usable. */
  public List<String> errors() {
    List<String> errors = new ArrayList<>();
    if (nodeName == null || !NODE_NAME.matcher(nodeName).matches()) {
      errors.add("node name '" + nodeName + "' must be letters, digits, '.', '-' or '_' (it is part of bus addresses)");
    }
    if (bridge == null || !INTERFACE_NAME.matcher(bridge).matches()) {
      errors.add("bridge '" + bridge + "' is not an interface name (1-15 characters, no spaces or '/')");
    }
    Optional<Ipv4Cidr> cluster = clusterCidr == null ? Optional.empty() : Ipv4Cidr.parse(clusterCidr);
    if (cluster.isEmpty()) {
      errors.add("cluster CIDR '" + clusterCidr + "' is not an IPv4 network like 10.128.0.0/16");
    }
    if (ownBlock == null) {
      errors.add("own block is missing (use an empty value to learn it from this node's lease)");
    } else if (!ownBlock.isEmpty()) {
      Optional<Ipv4Cidr> block = Ipv4Cidr.parse(ownBlock);
      if (block.isEmpty()) {
        errors.add("own block '" + ownBlock + "' is not an IPv4 network like 10.128.1.0/24");
      } else if (cluster.isPresent() && !cluster.get().contains(block.get())) {
        errors.add("own block " + ownBlock + " is not inside the cluster CIDR " + clusterCidr);
      }
    }
    if (datapath == null) {
      errors.add("datapath is missing (kernel or libipsec)");
    } else if (datapath == Datapath.LIBIPSEC
        && (tunnelInterface == null || !INTERFACE_NAME.matcher(tunnelInterface).matches())) {
      errors.add("tunnel interface '" + tunnelInterface + "' is not an interface name (the libipsec datapath needs it)");
    }
    if (datapath == Datapath.LIBIPSEC && bridge != null && bridge.equals(tunnelInterface)) {
      errors.add("tunnel interface and bridge are both '" + bridge + "'");
    }
    if (checkInterval == null || checkInterval.compareTo(MIN_CHECK_INTERVAL) < 0) {
      errors.add("check interval " + checkInterval + " is shorter than " + MIN_CHECK_INTERVAL.toMillis() + " ms");
    }
    if (iptablesRestore == null || iptablesRestore.isBlank()) {
      errors.add("iptables-restore command is empty");
    }
    if (iptablesSave == null || iptablesSave.isBlank()) {
      errors.add("iptables-save command is empty");
    }
    for (int port : controlPlanePorts) {
      if (port < 1 || port > 65535) {
        errors.add("control-plane port " + port + " is not 1..65535");
      }
    }
    if (controlPlaneOverIpsec && datapath == Datapath.LIBIPSEC) {
      errors.add("the control plane inside IPsec needs the kernel datapath (libipsec's ESP is invisible to iptables' policy match)");
    }
    return errors;
  }

  /** The cluster CIDR; call only on settings without {@link #errors()}. */
  public Ipv4Cidr cluster() {
    return Ipv4Cidr.parse(clusterCidr).orElseThrow();
  }

  /** The configured own block, if any; call only on settings without {@link #errors()}. */
  public Optional<Ipv4Cidr> configuredBlock() {
    return ownBlock.isEmpty() ? Optional.empty() : Ipv4Cidr.parse(ownBlock);
  }

  public FirewallSettings withOwnBlock(String block) {
    return new FirewallSettings(nodeName, bridge, block, clusterCidr, datapath, tunnelInterface, checkInterval,
        commandPrefix, iptablesRestore, iptablesSave, rulesetMonitor, controlPlanePorts, controlPlaneOverIpsec);
  }

  public FirewallSettings withDatapath(Datapath path, String tunnel) {
    return new FirewallSettings(nodeName, bridge, ownBlock, clusterCidr, path, tunnel, checkInterval,
        commandPrefix, iptablesRestore, iptablesSave, rulesetMonitor, controlPlanePorts, controlPlaneOverIpsec);
  }

  public FirewallSettings withCheckInterval(Duration interval) {
    return new FirewallSettings(nodeName, bridge, ownBlock, clusterCidr, datapath, tunnelInterface, interval,
        commandPrefix, iptablesRestore, iptablesSave, rulesetMonitor, controlPlanePorts, controlPlaneOverIpsec);
  }

  public FirewallSettings withCommandPrefix(List<String> prefix) {
    return new FirewallSettings(nodeName, bridge, ownBlock, clusterCidr, datapath, tunnelInterface, checkInterval,
        prefix, iptablesRestore, iptablesSave, rulesetMonitor, controlPlanePorts, controlPlaneOverIpsec);
  }

  public FirewallSettings withControlPlanePorts(List<Integer> ports) {
    return new FirewallSettings(nodeName, bridge, ownBlock, clusterCidr, datapath, tunnelInterface, checkInterval,
        commandPrefix, iptablesRestore, iptablesSave, rulesetMonitor, ports, controlPlaneOverIpsec);
  }

  public FirewallSettings withControlPlaneOverIpsec(boolean overIpsec) {
    return new FirewallSettings(nodeName, bridge, ownBlock, clusterCidr, datapath, tunnelInterface, checkInterval,
        commandPrefix, iptablesRestore, iptablesSave, rulesetMonitor, controlPlanePorts, overIpsec);
  }

  public FirewallSettings withCommands(String restore, String save, List<String> monitor) {
    return new FirewallSettings(nodeName, bridge, ownBlock, clusterCidr, datapath, tunnelInterface, checkInterval,
        commandPrefix, restore, save, monitor, controlPlanePorts, controlPlaneOverIpsec);
  }
}

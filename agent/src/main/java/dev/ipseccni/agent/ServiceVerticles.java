package dev.ipseccni.agent;

import com.hazelcast.config.Config;
import com.hazelcast.core.HazelcastInstance;
import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.firewall.FirewallService;
import dev.ipseccni.firewall.FirewallSettings;
import dev.ipseccni.ipam.BlockLeases;
import dev.ipseccni.ipam.IpamService;
import dev.ipseccni.ipam.IpamSettings;
import dev.ipseccni.tunnel.TunnelService;
import dev.ipseccni.tunnel.TunnelSettings;
import io.vertx.core.Deployable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The one place that knows every service: turns the agent's config into each service's
 * typed settings and verticle, in start order (IPAM first: the others wait for its lease).
 */
final class ServiceVerticles {
  private final AgentConfig config;
  private IpamService ipam;

  ServiceVerticles(AgentConfig config) {
    this.config = config;
  }

  /** Hazelcast settings the services need before the cluster starts. */
  List<Consumer<Config>> clusterCustomizers() {
    return config.runs(Addresses.IPAM) ? List.of(BlockLeases.customizer(config.cluster().expectedMembers())) : List.of();
  }

  IpamSettings ipamSettings() {
    AgentConfig.Network n = config.network();
    IpamSettings s = IpamSettings.defaults(config.nodeName(), config.underlayAddress(), n.name(),
            config.cluster().expectedMembers())
        .withNetwork(n.clusterCidr(), n.blockPrefixLength())
        .withJournalDir(config.stateDir().resolve("ipam"));
    return n.preferredBlock().map(s::withPreferredBlock).orElse(s);
  }

  TunnelSettings tunnelSettings() {
    return TunnelSettings.of(config.nodeName(), config.underlayAddress(), config.charon().viciSocket(),
        config.secretFile(), libipsec() ? dev.ipseccni.tunnel.Datapath.LIBIPSEC : dev.ipseccni.tunnel.Datapath.KERNEL,
        config.stateDir().resolve("swanctl.conf"));
  }

  FirewallSettings firewallSettings() {
    FirewallSettings d = FirewallSettings.defaults(config.nodeName());
    // the own block is learnt from this node's lease
    return new FirewallSettings(config.nodeName(), config.network().bridge(), "", config.network().clusterCidr(),
        libipsec() ? dev.ipseccni.firewall.Datapath.LIBIPSEC : dev.ipseccni.firewall.Datapath.KERNEL,
        d.tunnelInterface(), d.checkInterval(), d.commandPrefix(), d.iptablesRestore(), d.iptablesSave(),
        d.rulesetMonitor());
  }

  private boolean libipsec() {
    return config.charon().datapath().equals("libipsec");
  }

  /** The verticles to deploy, by service name, in start order. */
  Map<String, Deployable> create(EventPublisher events, HazelcastInstance hazelcast) {
    Map<String, Deployable> verticles = new LinkedHashMap<>();
    if (config.runs(Addresses.IPAM)) {
      ipam = new IpamService(ipamSettings(), events, hazelcast);
      verticles.put(Addresses.IPAM, ipam);
    }
    if (config.runs(Addresses.FIREWALL)) {
      verticles.put(Addresses.FIREWALL, new FirewallService(firewallSettings(), events));
    }
    if (config.runs(Addresses.TUNNEL)) {
      verticles.put(Addresses.TUNNEL, new TunnelService(tunnelSettings(), events));
    }
    return verticles;
  }

  /** The IPAM service of this node, for /state, when it runs here. */
  Optional<IpamService> ipam() {
    return Optional.ofNullable(ipam);
  }
}

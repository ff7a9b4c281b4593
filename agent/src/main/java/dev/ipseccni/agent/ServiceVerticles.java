package dev.ipseccni.agent;

import com.hazelcast.config.Config;
import com.hazelcast.core.HazelcastInstance;
import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.IpPrefix;
import dev.ipseccni.cni.CniGateway;
import dev.ipseccni.cni.CniGatewaySettings;
import dev.ipseccni.cni.NodeBridge;
import dev.ipseccni.cni.plugin.PluginProtocol;
import dev.ipseccni.firewall.FirewallService;
import dev.ipseccni.firewall.FirewallSettings;
import dev.ipseccni.ipam.BlockLeases;
import dev.ipseccni.ipam.IpamService;
import dev.ipseccni.ipam.IpamSettings;
import dev.ipseccni.ipam.NodeBlocks;
import dev.ipseccni.tunnel.ControlPlaneTunnels;
import dev.ipseccni.tunnel.PodMtu;
import dev.ipseccni.tunnel.Proposals;
import dev.ipseccni.tunnel.TunnelService;
import dev.ipseccni.tunnel.TunnelSettings;
import io.vertx.core.Deployable;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayList;
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
  private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(ServiceVerticles.class.getName());
  private final AgentConfig config;
  private IpamService ipam;

  ServiceVerticles(AgentConfig config) {
    this.config = config;
  }

  /** Hazelcast settings the services need before the cluster starts. */
  List<Consumer<Config>> clusterCustomizers() {
    List<Consumer<Config>> out = new ArrayList<>();
    if (config.runs(Addresses.IPAM)) {
      out.add(BlockLeases.customizer(config.cluster().expectedMembers()));
    }
    controlPlane().ifPresent(cp -> out.add(hz -> hz.addListenerConfig(new com.hazelcast.config.ListenerConfig(
        new com.hazelcast.cluster.InitialMembershipListener() {
          // on Hazelcast's event thread, as the cluster announces members
          @Override
          public void init(com.hazelcast.cluster.InitialMembershipEvent event) {
            event.getMembers().forEach(m -> cp.add(m.getAddress().getHost()));
          }

          @Override
          public void memberAdded(com.hazelcast.cluster.MembershipEvent event) {
            cp.add(event.getMember().getAddress().getHost());
          }

          @Override
          public void memberRemoved(com.hazelcast.cluster.MembershipEvent event) {
            // its connection stays: trap policies send it nothing but IKE
          }
        }))));
    return out;
  }

  private ControlPlaneTunnels controlPlane;

  /** The control plane's own IPsec connections (cluster.overIpsec), one object for the agent's life. */
  synchronized Optional<ControlPlaneTunnels> controlPlane() {
    if (controlPlane == null && config.cluster().overIpsec()) {
      controlPlane = new ControlPlaneTunnels(tunnelSettings(), controlPlanePorts());
    }
    return Optional.ofNullable(controlPlane);
  }

  IpamSettings ipamSettings() {
    AgentConfig.Network n = config.network();
    IpamSettings s = IpamSettings.defaults(config.nodeName(), config.underlayAddress(), n.name(),
            config.cluster().expectedMembers())
        .withNetwork(n.clusterCidr(), n.blockPrefixLength())
        .withJournalDir(config.stateDir().resolve("ipam"))
        .withTimings(config.timings().leaseRenew(), config.timings().leaseGrace(),
            IpamSettings.DEFAULT_CLAIM_RETRY)
        .withMirrorDelay(config.timings().ipamMirrorDelay());
    return n.preferredBlock().map(s::withPreferredBlock).orElse(s);
  }

  TunnelSettings tunnelSettings() {
    return new TunnelSettings(config.nodeName(), config.underlayAddress(), config.charon().viciSocket(),
        config.secretFile(), libipsec() ? dev.ipseccni.tunnel.Datapath.LIBIPSEC : dev.ipseccni.tunnel.Datapath.KERNEL,
        proposals(), config.timings().tunnelReconcile(),
        config.stateDir().resolve("swanctl.conf"), config.timings().secretGrace(), config.charon().auth());
  }

  FirewallSettings firewallSettings() {
    FirewallSettings d = FirewallSettings.defaults(config.nodeName());
    // the own block is learnt from this node's lease
    return new FirewallSettings(config.nodeName(), config.network().bridge(), "", config.network().clusterCidr(),
        libipsec() ? dev.ipseccni.firewall.Datapath.LIBIPSEC : dev.ipseccni.firewall.Datapath.KERNEL,
        d.tunnelInterface(), config.timings().firewallCheck(), d.commandPrefix(), d.iptablesRestore(), d.iptablesSave(),
        d.rulesetMonitor(), controlPlanePorts(), config.cluster().overIpsec());
  }

  /** Hazelcast's and the event bus's ports of this node and of every listed member. */
  List<Integer> controlPlanePorts() {
    AgentConfig.Cluster c = config.cluster();
    List<Integer> ports = new ArrayList<>(List.of(c.port()));
    if (c.eventBusPort() > 0) {
      ports.add(c.eventBusPort());
    }
    for (String member : c.members()) {
      int colon = member.lastIndexOf(':');
      if (colon > 0) {
        try {
          ports.add(Integer.parseInt(member.substring(colon + 1)));
        } catch (NumberFormatException notAPort) {
          // checked by AgentConfig; a member without a port uses cluster.port
        }
      }
    }
    return ports;
  }

  CniGatewaySettings gatewaySettings() {
    AgentConfig.Network n = config.network();
    List<String> readiness = new ArrayList<>(NodeReadiness.components(config));
    readiness.remove(Addresses.CNI_GATEWAY);
    // the agent runs in the node's network namespace: the delegate plugin needs no prefix
    return new CniGatewaySettings(config.nodeName(), config.cniSocket(), n.name(), n.bridge(), podMtu().value(),
        PluginProtocol.pendingDelDir(config.cniSocket()), PluginProtocol.SUPPORTED_VERSIONS, readiness, List.of(),
        Duration.ofSeconds(5), Duration.ofSeconds(30)).withConflistVersion(n.cniVersion());
  }

  private PodMtu podMtu;

  /**
   * The pods' MTU, found once: network.mtu when set, else the MTU of the link holding the underlay
   * address less what ESP adds for this datapath's proposal and encapsulation.
   */
  synchronized PodMtu podMtu() {
    if (podMtu == null) {
      java.util.OptionalInt explicit = config.network().mtu();
      if (explicit.isPresent()) {
        podMtu = PodMtu.explicit(explicit.getAsInt());
      } else {
        UnderlayLink link = UnderlayLink.holding(config.underlayAddress());
        podMtu = PodMtu.fromUnderlay(link.name(), link.mtu(), proposals(),
            libipsec() ? dev.ipseccni.tunnel.Datapath.LIBIPSEC : dev.ipseccni.tunnel.Datapath.KERNEL);
      }
      LOG.info("pod MTU " + podMtu.value() + " (" + podMtu.derivation() + ")");
    }
    return podMtu;
  }

  private Proposals proposals() {
    return new Proposals(config.charon().ikeProposals(), config.charon().espProposals());
  }

  private boolean libipsec() {
    return config.charon().datapath().equals("libipsec");
  }

  /** The verticles to deploy, by service name, in start order. */
  Map<String, Deployable> create(Vertx vertx, EventPublisher events, HazelcastInstance hazelcast) {
    Map<String, Deployable> verticles = new LinkedHashMap<>();
    if (config.runs(Addresses.IPAM)) {
      ipam = new IpamService(ipamSettings(), events, hazelcast);
      verticles.put(Addresses.IPAM, ipam);
    }
    if (config.runs(Addresses.FIREWALL)) {
      FirewallService firewall = new FirewallService(firewallSettings(), events);
      if (config.charon().auth() instanceof dev.ipseccni.tunnel.identity.IkeAuth.Certificates c
          && c.deniedNodes().isPresent()) {
        firewall.closeControlPlaneTo(() -> dev.ipseccni.tunnel.identity.DeniedNodes.read(c.deniedNodes().get()));
      }
      verticles.put(Addresses.FIREWALL, firewall);
    }
    if (config.runs(Addresses.CNI_GATEWAY)) {
      CniGatewaySettings gateway = gatewaySettings();
      CniGateway cni = new CniGateway(gateway, events);
      verticles.put(Addresses.BRIDGE, new NodeBridgeKeeper(events,
          new NodeBridge(gateway.bridgeName(), List.of(), cni.spawner()), gateway.mtu(), cni::replayPendingDeletesNow));
      verticles.put(Addresses.CNI_GATEWAY, cni);
      verticles.put("conflist", new ConflistWriter(config.cniConfDir(), gateway,
          new NodeReadiness(vertx, config.nodeName(), NodeReadiness.components(config))));
    }
    if (config.runs(Addresses.TUNNEL)) {
      TunnelService tunnel = new TunnelService(tunnelSettings(), events, config.timings().leaseGrace());
      controlPlane().ifPresent(tunnel::keepControlPlane);
      if (config.runs(Addresses.CNI_GATEWAY)) {
        // the bridge keeper puts the gateway on cni0: charon's routes take their source address from it
        tunnel.loadTunnelsAfterGateway(block -> NodeBlocks.gateway(IpPrefix.parse(block)));
      }
      verticles.put(Addresses.TUNNEL, tunnel);
    }
    return verticles;
  }

  /** The IPAM service of this node, for /state, when it runs here. */
  Optional<IpamService> ipam() {
    return Optional.ofNullable(ipam);
  }
}

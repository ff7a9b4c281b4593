package dev.ipseccni.agent;

import com.hazelcast.config.Config;
import dev.ipseccni.agent.api.HttpApi;
import dev.ipseccni.agent.journal.KafkaJournal;
import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterBootstrap.JoinedCluster;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.AgentEvent;
import dev.ipseccni.bus.message.MemberEvent;
import io.vertx.core.Future;
import io.vertx.core.Deployable;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * The node process: joins the cluster, deploys the service verticles the config names,
 * serves the HTTP API, and leaves the cluster cleanly when stopped.
 */
final class NodeAgent {
  static final String VERSION = "0.1.0";
  private static final Logger LOG = Logger.getLogger(NodeAgent.class.getName());

  private final AgentConfig config;
  private final JoinedCluster cluster;
  private final EventPublisher events;
  private final RecentEvents recent = new RecentEvents(200);
  private final ServiceVerticles services;
  private final HttpApi api;
  private final KafkaJournal journal;

  private NodeAgent(AgentConfig config, JoinedCluster cluster, ServiceVerticles services) {
    this.config = config;
    this.cluster = cluster;
    this.services = services;
    this.events = new EventPublisher(cluster.vertx().eventBus(), config.nodeName(), System.currentTimeMillis());
    // the journal takes this node's events from the publisher itself, from the first one on
    this.journal = config.journal().enabled() ? new KafkaJournal(config.nodeName(), config.journal()) : null;
    if (journal != null) {
      events.addSink(journal::accept);
    }
    this.api = new HttpApi(config, this::state,
        new NodeReadiness(cluster.vertx(), config.nodeName(), NodeReadiness.components(config)));
  }

  /** Starts everything; the future fails (and nothing is left running) if any part cannot start. */
  static Future<NodeAgent> start(AgentConfig config) {
    List<String> problems = config.checkEnvironment();
    if (!problems.isEmpty()) {
      return Future.failedFuture(new ConfigException(problems));
    }
    ServiceVerticles services = new ServiceVerticles(config);
    if (services.controlPlane().isPresent()) {
      try {
        protectControlPlane(config, services, services.controlPlane().get());
      } catch (Exception e) {
        services.controlPlane().get().close();
        return Future.failedFuture(new IllegalStateException("cannot put the control plane inside IPsec"
            + " (cluster.overIpsec), so the node does not join: " + e.getMessage(), e));
      }
    }
    List<Consumer<Config>> customizers = new ArrayList<>(services.clusterCustomizers());
    long began = System.nanoTime();
    return ClusterBootstrap.join(clusterSettings(config), customizers).compose(cluster -> {
      LOG.info(() -> String.format("joined cluster %s as %s in %d ms; members %s; event bus on port %d, %s",
          config.cluster().name(), config.nodeName(), (System.nanoTime() - began) / 1_000_000,
          cluster.membership().nodes(), config.cluster().eventBusPort(), config.cluster().tls()
              .map(t -> "mutual TLS (CA " + t.caFile() + ")").orElse("plain TCP (cluster.tls not set)")));
      NodeAgent agent = new NodeAgent(config, cluster, services);
      return agent.deploy().map(agent).recover(err -> cluster.vertx().close().transform(x -> Future.failedFuture(err)));
    });
  }

  /**
   * Before the first packet to another member: the firewall's control-plane rules (only a
   * host-to-host SA opens the cluster's ports, nothing leaves for them in clear) and charon's
   * connections to the join list. The firewall keeps the pod rules of a block already in place.
   */
  private static void protectControlPlane(AgentConfig config, ServiceVerticles services,
      dev.ipseccni.tunnel.ControlPlaneTunnels controlPlane) throws Exception {
    if (config.runs(Addresses.FIREWALL)) {
      dev.ipseccni.firewall.NodeFirewall firewall = new dev.ipseccni.firewall.NodeFirewall(services.firewallSettings());
      firewall.enforce(firewall.blockInPlace());
    }
    controlPlane.start(joinAddresses(config));
  }

  /** The join list's addresses: cluster.members, or what cluster.discovery.dns resolves to now. */
  static List<String> joinAddresses(AgentConfig config) {
    Optional<String> dns = config.cluster().discoveryDns();
    if (dns.isEmpty()) {
      return config.cluster().memberAddresses();
    }
    try {
      List<String> out = new ArrayList<>();
      for (java.net.InetAddress a : java.net.InetAddress.getAllByName(dns.get())) {
        out.add(a.getHostAddress());
      }
      return out;
    } catch (java.net.UnknownHostException e) {
      // the members that join through us are announced later (the membership listener)
      LOG.warning("control plane: " + dns.get() + " does not resolve yet (" + e.getMessage()
          + "): only nodes that join through this one get a connection");
      return List.of();
    }
  }

  static ClusterSettings clusterSettings(AgentConfig config) {
    AgentConfig.Cluster c = config.cluster();
    ClusterSettings settings = new ClusterSettings(c.name(), config.nodeName(), config.underlayAddress(), c.port(),
        c.eventBusPort(), c.members(), c.liteMember(), ClusterSettings.Timing.DEFAULT, c.tls());
    return c.discoveryDns().map(settings::withServiceDns).orElse(settings);
  }

  private Future<Void> deploy() {
    Vertx vertx = cluster.vertx();
    cluster.membership().listen(
        (node, address) -> {
          LOG.info(() -> "member joined: " + node + " (" + address + ")");
          events.publish(Addresses.MEMBER_JOINED, new MemberEvent(node, address));
        },
        (node, address) -> {
          LOG.warning(() -> "member left: " + node + " (" + address + ")");
          events.publish(Addresses.MEMBER_LEFT, new MemberEvent(node, address));
        });

    // The API's cluster picture and the journal listen before any service publishes.
    Future<Void> chain = recent.subscribe(vertx.eventBus()).compose(x -> api.observe(vertx.eventBus()));
    if (journal != null) {
      chain = chain.compose(x -> vertx.deployVerticle(journal).mapEmpty());
    }
    for (Map.Entry<String, Deployable> service : services.create(vertx, events, cluster.hazelcast()).entrySet()) {
      chain = chain.compose(x -> vertx.deployVerticle(service.getValue())
          .onSuccess(id -> LOG.info(() -> "service started: " + service.getKey()))
          .mapEmpty());
    }
    if (config.api().enabled()) {
      chain = chain.compose(x -> vertx.deployVerticle(api)
          .onSuccess(id -> LOG.info(() -> "HTTP API on " + config.api().address() + ":" + config.api().port()))
          .mapEmpty());
    }
    return chain.onSuccess(x -> events.publish(Addresses.AGENT_STARTED,
        new AgentEvent(VERSION, config.underlayAddress(), config.services())));
  }

  Map<String, Object> state() {
    Map<String, Object> state = new LinkedHashMap<>();
    state.put("node", config.nodeName());
    state.put("underlayAddress", config.underlayAddress());
    state.put("cluster", config.cluster().name());
    state.put("members", cluster.membership().nodes());
    state.put("services", config.services());
    services.ipam().ifPresent(ipam -> state.put("ipam", ipam.view()));
    if (config.runs(Addresses.CNI_GATEWAY)) {
      state.put("mtu", Map.of("pod", services.podMtu().value(), "derivation", services.podMtu().derivation()));
    }
    state.put("recentEvents", recent.snapshot());
    return state;
  }

  /** Undeploys the services, leaves the cluster and closes every socket. */
  Future<Void> stop() {
    events.publish(Addresses.AGENT_STOPPING, new AgentEvent(VERSION, config.underlayAddress(), config.services()));
    return cluster.vertx().close();
  }
}

package dev.ipseccni.bus;

import com.hazelcast.config.AdvancedNetworkConfig;
import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.ServerSocketEndpointConfig;
import com.hazelcast.core.HazelcastInstance;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.spi.cluster.hazelcast.ConfigUtil;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;
import java.util.List;
import java.util.function.Consumer;

/**
 * Starts a clustered Vert.x whose cluster manager is Hazelcast configured in code: TCP-IP
 * join to a fixed member list (no multicast, no auto-detection), bound to the node's
 * underlay address only, with heartbeats tuned so a hung member is evicted within seconds.
 *
 * <p>Members talk on the member endpoint of Hazelcast's advanced network, not on its default
 * single port. On the single port, a connection to an address whose kernel accepts TCP but
 * whose member never answers (a member frozen by SIGSTOP, any listener that never reads) keeps one
 * of Hazelcast's output threads spinning on that connection until it closes, and the other
 * connections that thread writes for may be stuck behind it: a node joining while another
 * member was frozen waited there for minutes (its join requests to the live master were never
 * written). The member endpoint waits for the peer's protocol without spinning.
 */
public final class ClusterBootstrap {

  /** Member attribute carrying the node name, so membership can be reported by node. */
  public static final String NODE_ATTRIBUTE = "ipsec-cni.node";

  private ClusterBootstrap() {}

  /** A started, clustered node: its Vert.x and the Hazelcast instance behind it. */
  public record JoinedCluster(Vertx vertx, HazelcastInstance hazelcast, ClusterMembership membership) {}

  /**
   * Joins (or forms) the cluster.
   *
   * @param customizers change the Hazelcast config before start, e.g. a service's split-brain protection
   */
  public static Future<JoinedCluster> join(ClusterSettings settings, List<Consumer<Config>> customizers) {
    Config config = hazelcastConfig(settings);
    customizers.forEach(c -> c.accept(config));
    // Hazelcast picks its address from this property; with several nodes on one machine
    // each must bind its own underlay address.
    System.setProperty("hazelcast.local.localAddress", settings.bindAddress());
    HazelcastClusterManager manager = new HazelcastClusterManager(config);
    VertxOptions options = new VertxOptions();
    options.getEventBusOptions()
        .setHost(settings.bindAddress())
        .setPort(settings.eventBusPort())
        .setClusterPublicHost(settings.bindAddress());
    settings.tls().ifPresent(tls -> options.getEventBusOptions()
        .setSsl(true)
        .setKeyCertOptions(new PemKeyCertOptions().setCertPath(tls.certFile().toString())
            .setKeyPath(tls.keyFile().toString()))
        .setTrustOptions(new PemTrustOptions().addCertPath(tls.caFile().toString()))
        // The event bus's client trusts every server certificate unless told otherwise
        // (EventBusOptions.DEFAULT_TRUST_ALL is true): without this a member with a foreign
        // certificate could not send, but would receive every message sent to it.
        .setTrustAll(false)
        .setClientAuth(ClientAuth.REQUIRED));
    return Vertx.builder().with(options).withClusterManager(manager).buildClustered()
        .map(vertx -> {
          HazelcastInstance hz = manager.getHazelcastInstance();
          BusCodecs.register(vertx.eventBus());
          return new JoinedCluster(vertx, hz, new ClusterMembership(hz));
        });
  }

  /** How long one lookup of {@code cluster.discovery.dns} may take before it counts as no answer. */
  static final int DNS_TIMEOUT_SECONDS = 5;

  static Config hazelcastConfig(ClusterSettings settings) {
    Config config = ConfigUtil.loadConfig();
    config.setClusterName(settings.clusterName());
    config.setLiteMember(settings.liteMember());
    config.getMemberAttributeConfig().setAttribute(NODE_ATTRIBUTE, settings.nodeName());

    AdvancedNetworkConfig network = config.getAdvancedNetworkConfig().setEnabled(true);
    ServerSocketEndpointConfig member = new ServerSocketEndpointConfig();
    member.setPort(settings.port()).setPortAutoIncrement(false);
    member.getInterfaces().setEnabled(false);
    network.setMemberEndpointConfig(member);
    JoinConfig join = network.getJoin();
    join.getMulticastConfig().setEnabled(false);
    join.getAutoDetectionConfig().setEnabled(false);
    if (settings.serviceDns().isPresent()) {
      // Hazelcast's Kubernetes discovery, DNS-lookup mode: every join attempt and merge check
      // resolves the name again, so members listed later are found and a dropped address is no
      // longer tried; who is a member is still decided by Hazelcast's heartbeats.
      join.getKubernetesConfig().setEnabled(true)
          .setProperty("service-dns", settings.serviceDns().get())
          .setProperty("service-port", String.valueOf(settings.port()))
          .setProperty("service-dns-timeout", String.valueOf(DNS_TIMEOUT_SECONDS));
    } else {
      join.getTcpIpConfig().setEnabled(true).setMembers(settings.members())
          .setConnectionTimeoutSeconds(2);
    }

    ClusterSettings.Timing t = settings.timing();
    config.setProperty("hazelcast.socket.bind.any", "false");
    config.setProperty("hazelcast.wait.seconds.before.join", String.valueOf(t.joinWaitSeconds()));
    config.setProperty("hazelcast.heartbeat.interval.seconds", String.valueOf(t.heartbeatSeconds()));
    config.setProperty("hazelcast.max.no.heartbeat.seconds", String.valueOf(t.maxNoHeartbeatSeconds()));
    config.setProperty("hazelcast.merge.first.run.delay.seconds", String.valueOf(t.mergeDelaySeconds()));
    config.setProperty("hazelcast.merge.next.run.delay.seconds", String.valueOf(t.mergeDelaySeconds()));
    config.setProperty("hazelcast.logging.type", "jdk");
    // The agent leaves the cluster itself on SIGTERM, after its services stopped.
    config.setProperty("hazelcast.shutdownhook.enabled", "false");
    config.setProperty("hazelcast.phone.home.enabled", "false");
    return config;
  }
}

package dev.ipseccni.agent.api;

import dev.ipseccni.bus.Event;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.distribution.DistributionStatisticConfig;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/**
 * What /metrics shows, in Prometheus text. Most meters are derived from the bus events
 * this node sees (so the services need no metrics code): event traffic by address and
 * node, pool size and use per node, tunnels up and down per node, firewall repairs.
 *
 * <p>The registry is also added to Micrometer's global registry, so code that cannot see
 * this class (a service verticle) can record meters that show up here, e.g. the CNI
 * command timer {@value #CNI_COMMAND} (tags {@code command}, {@code code}), for which
 * histogram buckets are switched on here.
 */
public final class AgentMetrics {
  /** Timer name for CNI command latency; tags command=ADD|DEL|CHECK|GC|STATUS, code=0 or the CNI error code. */
  public static final String CNI_COMMAND = dev.ipseccni.cni.CniGateway.COMMAND_TIMER;
  /** Counter name for tunnel-service reconcile runs (recorded by the service, when it does). */
  public static final String RECONCILE_RUNS = dev.ipseccni.tunnel.TunnelService.RECONCILE_RUNS;

  private final PrometheusMeterRegistry registry;
  private final ClusterView view;
  private final String self;

  public AgentMetrics(ClusterView view) {
    this.view = view;
    this.self = view.self();
    registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    registry.config().commonTags("observer", self);
    registry.config().meterFilter(new MeterFilter() {
      @Override
      public DistributionStatisticConfig configure(Meter.Id id, DistributionStatisticConfig config) {
        if (id.getName().equals(CNI_COMMAND)) {
          return DistributionStatisticConfig.builder().percentilesHistogram(true).build().merge(config);
        }
        return config;
      }
    });
    Metrics.addRegistry(registry);
    new JvmMemoryMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);

    MultiGauge poolSize = MultiGauge.builder("ipsec.cni.pool.addresses")
        .description("pod addresses in the node's block").register(registry);
    MultiGauge poolUsed = MultiGauge.builder("ipsec.cni.pool.used")
        .description("pod addresses allocated on the node (own node from IPAM, others from address events)")
        .register(registry);
    MultiGauge tunnels = MultiGauge.builder("ipsec.cni.tunnels")
        .description("tunnels each node reports, by state").register(registry);
    Gauge.builder("ipsec.cni.nodes", view, v -> v.snapshot().nodes().size())
        .description("nodes seen on the bus").register(registry);
    // MultiGauge rows follow the view at each scrape (nodes come and go).
    refresh = ownUsed -> {
      ClusterView.Snapshot s = view.snapshot();
      List<MultiGauge.Row<?>> size = new ArrayList<>();
      List<MultiGauge.Row<?>> used = new ArrayList<>();
      for (ClusterView.NodeView n : s.nodes()) {
        if (!n.block().isEmpty()) {
          size.add(MultiGauge.Row.of(Tags.of("node", n.node(), "block", n.block()), n.poolSize()));
          long u = n.node().equals(self) && ownUsed.isPresent() ? ownUsed.getAsLong() : n.addressesUsed();
          used.add(MultiGauge.Row.of(Tags.of("node", n.node(), "block", n.block()), u));
        }
      }
      poolSize.register(size, true);
      poolUsed.register(used, true);
      List<MultiGauge.Row<?>> t = new ArrayList<>();
      view.tunnelCounts().forEach((node, c) -> {
        t.add(MultiGauge.Row.of(Tags.of("node", node, "state", "up"), c[0]));
        t.add(MultiGauge.Row.of(Tags.of("node", node, "state", "down"), c[1]));
      });
      tunnels.register(t, true);
    };
    view.onEvent(this::count);
  }

  private final java.util.function.Consumer<OptionalLong> refresh;

  private void count(Event event) {
    Counter.builder("ipsec.cni.bus.events").description("events received from the cluster bus")
        .tags("address", event.address(), "node", event.node()).register(registry).increment();
    if (event.node().equals(self)) {
      Counter.builder("ipsec.cni.bus.published").description("events this node published")
          .tags("address", event.address()).register(registry).increment();
    }
    if (event.address().equals(dev.ipseccni.bus.Addresses.FIREWALL_DRIFT)) {
      Counter.builder("ipsec.cni.firewall.repairs").description("firewall drift found and repaired")
          .tags("node", event.node()).register(registry).increment();
    }
  }

  public PrometheusMeterRegistry registry() {
    return registry;
  }

  /**
   * The Prometheus text exposition.
   *
   * @param ownUsed this node's allocations from its IPAM service, when it runs here (more
   *     exact than address events, which a restarted agent has not all seen)
   */
  public String scrape(OptionalLong ownUsed) {
    refresh.accept(ownUsed);
    return registry.scrape();
  }

  /** Detaches from the global registry (tests start several agents in one JVM). */
  public void close() {
    Metrics.removeRegistry(registry);
    registry.close();
  }
}

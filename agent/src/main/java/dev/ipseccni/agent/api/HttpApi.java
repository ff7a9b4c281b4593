package dev.ipseccni.agent.api;

import dev.ipseccni.agent.AgentConfig;
import dev.ipseccni.agent.NodeReadiness;
import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.JsonRecordCodec;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.ipam.IpamView;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.StaticHandler;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.function.Supplier;

/**
 * The node's read-only HTTP API (docs/api.md): liveness, readiness with the condition that
 * fails, this node's state, the cluster as seen on the bus, Prometheus metrics, the live
 * event stream (Server-Sent Events) and the dashboard. Bound to the node address, never to
 * all interfaces by default.
 *
 * <p>The cluster picture must start before the services do, or it misses their first
 * events: call {@link #observe} early, deploy the verticle once the services run.
 */
public final class HttpApi extends VerticleBase {
  private static final long KEEPALIVE_MILLIS = 15_000;

  private final AgentConfig config;
  private final Supplier<Map<String, Object>> state;
  private final NodeReadiness readiness;
  private final ClusterView view;
  private final AgentMetrics metrics;
  private final EventStream stream;
  private HttpServer server;

  /**
   * @param state the agent's own state (node, members, services, the IPAM view), which
   *     /state extends with tunnels, pods, firewall and readiness
   */
  public HttpApi(AgentConfig config, Supplier<Map<String, Object>> state, NodeReadiness readiness) {
    this.config = config;
    this.state = state;
    this.readiness = readiness;
    this.view = new ClusterView(config.nodeName(), 1000);
    this.metrics = new AgentMetrics(view);
    this.stream = new EventStream(view);
  }

  /** Starts recording every event of the cluster bus; completes once subscribed. */
  public Future<Void> observe(EventBus bus) {
    return view.subscribe(bus);
  }

  public ClusterView view() {
    return view;
  }

  @Override
  public Future<?> start() {
    stream.attach(context);
    Router router = Router.router(vertx);
    router.get("/healthz").handler(ctx -> ctx.response().putHeader("content-type", "text/plain").end("ok\n"));
    router.get("/readyz").handler(this::readyz);
    router.get("/state").handler(this::state);
    router.get("/cluster").handler(ctx -> json(ctx, 200, cluster()));
    router.get("/metrics").handler(ctx -> ctx.response()
        .putHeader("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .end(metrics.scrape(ownAllocations())));
    router.get("/events").handler(stream::open);
    router.get("/events/recent").handler(stream::recent);
    // vertx-web matches "/dashboard" and "/dashboard/" alike: redirect to the file, not the folder
    router.get("/").handler(ctx -> ctx.redirect("/dashboard/index.html"));
    router.get("/dashboard/*").handler(StaticHandler.create("dashboard").setCachingEnabled(false));
    // read-only: anything else, whatever its method, is not here
    router.route().handler(ctx -> ctx.response().setStatusCode(ctx.request().method().name().equals("GET") ? 404 : 405)
        .putHeader("content-type", "text/plain").end("not found: read-only API, see /dashboard/ or docs/api.md\n"));
    vertx.setPeriodic(KEEPALIVE_MILLIS, id -> stream.keepAlive());
    server = vertx.createHttpServer();
    return server.requestHandler(router).listen(config.api().port(), config.api().address());
  }

  @Override
  public Future<?> stop() {
    stream.closeAll();
    metrics.close();
    return server == null ? Future.succeededFuture() : server.close();
  }

  private void readyz(RoutingContext ctx) {
    readiness().onComplete(done -> {
      List<ComponentStatus> statuses = done.result();
      boolean ready = statuses.stream().allMatch(ComponentStatus::ready);
      Map<String, Object> body = new LinkedHashMap<>();
      body.put("ready", ready);
      body.put("status", status(statuses));
      body.put("failing", failing(statuses));
      body.put("degraded", degraded(statuses));
      body.put("components", statuses);
      json(ctx, ready ? 200 : 503, body);
    });
  }

  private static List<String> failing(List<ComponentStatus> statuses) {
    return statuses.stream().filter(s -> !s.ready()).map(s -> s.component() + ": " + s.reason()).toList();
  }

  /** What works only in part on a ready node (a peer tunnel that does not come up), as {@code service: what}. */
  private static List<String> degraded(List<ComponentStatus> statuses) {
    return statuses.stream().flatMap(s -> s.degraded().stream().map(d -> s.component() + ": " + d)).toList();
  }

  /** "ready", "degraded" (ready, takes pods, but something does not work) or "not ready". */
  private static String status(List<ComponentStatus> statuses) {
    return !NodeReadiness.allReady(statuses) ? "not ready" : degraded(statuses).isEmpty() ? "ready" : "degraded";
  }

  /** The node's readiness rule, the same one that decides when the conflist is written. */
  public Future<List<ComponentStatus>> readiness() {
    return readiness.check();
  }

  /** This node: its state as the agent gives it, plus lease, pods, tunnels, firewall and readiness. */
  private void state(RoutingContext ctx) {
    readiness().onComplete(done -> {
      List<ComponentStatus> statuses = done.result();
      Map<String, Object> base = state.get();
      updateMembers(base);
      Map<String, Object> body = new LinkedHashMap<>(base);
      Optional<IpamView> ipam = ipamView(base);
      body.put("ready", statuses.stream().allMatch(ComponentStatus::ready));
      body.put("status", status(statuses));
      body.put("failing", failing(statuses));
      body.put("degraded", degraded(statuses));
      body.put("components", statuses);
      body.put("lease", ipam.flatMap(IpamView::lease).map(l -> (Object) l)
          .orElseGet(() -> Map.of("node", config.nodeName(), "held", false)));
      body.put("pods", pods(ipam));
      body.put("tunnels", view.tunnelsOf(config.nodeName()));
      body.put("firewall", firewall(statuses));
      if (ipam.isPresent()) {
        // records with Optional fields are shown flat, readable without a Jdk8 module
        IpamView v = ipam.get();
        Map<String, Object> flat = new LinkedHashMap<>();
        flat.put("node", v.node());
        flat.put("ready", v.ready());
        flat.put("reason", v.reason());
        flat.put("lease", v.lease().orElse(null));
        flat.put("allocations", v.allocations());
        body.put("ipam", flat);
      }
      json(ctx, 200, body);
    });
  }

  private static Optional<IpamView> ipamView(Map<String, Object> base) {
    return base.get("ipam") instanceof IpamView v ? Optional.of(v) : Optional.empty();
  }

  private OptionalLong ownAllocations() {
    return ipamView(state.get()).map(v -> OptionalLong.of(v.allocations().size())).orElse(OptionalLong.empty());
  }

  private void updateMembers(Map<String, Object> base) {
    if (base.get("members") instanceof List<?> members) {
      view.members(members.stream().map(String::valueOf).toList());
    }
  }

  /**
   * The pods of this node: from the IPAM allocations when IPAM runs here (exact, survives an
   * agent restart), joined with the pod events for names; else from pod events alone.
   */
  private List<Map<String, Object>> pods(Optional<IpamView> ipam) {
    List<ClusterView.PodView> seen = view.podsOf(config.nodeName());
    List<Map<String, Object>> pods = new ArrayList<>();
    if (ipam.isPresent()) {
      for (Allocation a : ipam.get().allocations()) {
        Optional<ClusterView.PodView> pod = seen.stream()
            .filter(p -> p.containerId().equals(a.containerId()) && p.ifName().equals(a.ifName())).findFirst();
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("containerId", a.containerId());
        row.put("ifName", a.ifName());
        row.put("podNamespace", pod.map(ClusterView.PodView::podNamespace).orElse(""));
        row.put("podName", pod.map(ClusterView.PodView::podName).orElse(""));
        row.put("address", a.address());
        row.put("network", a.network());
        pods.add(row);
      }
      return pods;
    }
    for (ClusterView.PodView p : seen) {
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("containerId", p.containerId());
      row.put("ifName", p.ifName());
      row.put("podNamespace", p.podNamespace());
      row.put("podName", p.podName());
      row.put("address", p.address());
      pods.add(row);
    }
    return pods;
  }

  private Map<String, Object> firewall(List<ComponentStatus> statuses) {
    Map<String, Object> fw = new LinkedHashMap<>();
    Optional<ComponentStatus> status = statuses.stream().filter(s -> s.component().equals(Addresses.FIREWALL))
        .findFirst();
    fw.put("runs", status.isPresent());
    fw.put("ready", status.map(ComponentStatus::ready).orElse(false));
    fw.put("reason", status.map(ComponentStatus::reason).orElse("firewall service not run by this agent"));
    Optional<ClusterView.FirewallView> last = view.firewallOf(config.nodeName());
    fw.put("lastEvent", last.map(ClusterView.FirewallView::lastEvent).orElse(""));
    fw.put("chains", last.map(ClusterView.FirewallView::chains).orElse(List.of()));
    fw.put("repairs", last.map(ClusterView.FirewallView::repairs).orElse(0L));
    fw.put("lastRepaired", last.map(ClusterView.FirewallView::lastRepaired).orElse(List.of()));
    return fw;
  }

  /** The cluster as this node saw it on the bus, with tunnel reports flattened for readers without Optional. */
  Map<String, Object> cluster() {
    updateMembers(state.get());
    ClusterView.Snapshot s = view.snapshot();
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("observer", s.observer());
    body.put("nodes", s.nodes());
    List<Map<String, Object>> links = new ArrayList<>();
    for (ClusterView.MeshLink l : s.tunnels()) {
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("a", l.a());
      row.put("b", l.b());
      row.put("state", l.state());
      row.put("fromA", l.fromA().orElse(null));
      row.put("fromB", l.fromB().orElse(null));
      links.add(row);
    }
    body.put("tunnels", links);
    body.put("pods", s.pods());
    body.put("firewalls", s.firewalls());
    body.put("eventsSeen", s.eventsSeen());
    return body;
  }

  static void json(RoutingContext ctx, int status, Object body) {
    ctx.response().setStatusCode(status).putHeader("content-type", "application/json")
        .end(new String(JsonRecordCodec.toJson(body), StandardCharsets.UTF_8));
  }

  static String eventJson(Event event) {
    return new String(JsonRecordCodec.toJson(event), StandardCharsets.UTF_8);
  }
}

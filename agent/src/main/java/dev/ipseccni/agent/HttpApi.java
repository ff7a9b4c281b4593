package dev.ipseccni.agent;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.JsonRecordCodec;
import dev.ipseccni.bus.message.ComponentStatus;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The node's read-only HTTP API: liveness, readiness (with the condition that fails) and
 * this node's state. Bound to the node address, never to all interfaces by default.
 */
final class HttpApi extends VerticleBase {
  private static final DeliveryOptions STATUS_TIMEOUT = new DeliveryOptions().setSendTimeout(2_000);

  private final AgentConfig config;
  private final Supplier<Map<String, Object>> state;
  private HttpServer server;

  HttpApi(AgentConfig config, Supplier<Map<String, Object>> state) {
    this.config = config;
    this.state = state;
  }

  @Override
  public Future<?> start() {
    Router router = Router.router(vertx);
    router.get("/healthz").handler(ctx -> ctx.response().putHeader("content-type", "text/plain").end("ok\n"));
    router.get("/readyz").handler(this::readyz);
    router.get("/state").handler(ctx -> json(ctx, 200, state.get()));
    server = vertx.createHttpServer();
    return server.requestHandler(router).listen(config.api().port(), config.api().address());
  }

  @Override
  public Future<?> stop() {
    return server == null ? Future.succeededFuture() : server.close();
  }

  private void readyz(RoutingContext ctx) {
    readiness().onComplete(done -> {
      List<ComponentStatus> statuses = done.result();
      boolean ready = statuses.stream().allMatch(ComponentStatus::ready);
      Map<String, Object> body = new LinkedHashMap<>();
      body.put("ready", ready);
      body.put("components", statuses);
      json(ctx, ready ? 200 : 503, body);
    });
  }

  /** Asks every service this agent runs; one that does not answer is not ready. */
  Future<List<ComponentStatus>> readiness() {
    List<Future<ComponentStatus>> asks = new ArrayList<>();
    for (String component : config.services()) {
      asks.add(vertx.eventBus()
          .<ComponentStatus>request(Addresses.nodeStatus(config.nodeName(), component), null, STATUS_TIMEOUT)
          .map(reply -> reply.body())
          .recover(err -> Future.succeededFuture(
              ComponentStatus.notReady(component, "no answer from the service: " + err.getMessage()))));
    }
    return Future.join(asks).transform(ignored -> Future.succeededFuture(asks.stream().map(Future::result).toList()));
  }

  private static void json(RoutingContext ctx, int status, Object body) {
    ctx.response().setStatusCode(status).putHeader("content-type", "application/json")
        .end(new String(JsonRecordCodec.toJson(body), java.nio.charset.StandardCharsets.UTF_8));
  }
}

package dev.ipseccni.agent;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.message.ComponentStatus;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import java.util.ArrayList;
import java.util.List;

/**
 * The readiness rule of the node: every component it runs answers ready. A component
 * that does not answer within two seconds is not ready, with that as its reason.
 */
public final class NodeReadiness {
  private static final DeliveryOptions STATUS_TIMEOUT = new DeliveryOptions().setSendTimeout(2_000).setLocalOnly(true);

  private final Vertx vertx;
  private final String node;
  private final List<String> components;

  public NodeReadiness(Vertx vertx, String node, List<String> components) {
    this.vertx = vertx;
    this.node = node;
    this.components = List.copyOf(components);
  }

  /** The components whose readiness makes the node's, for an agent with this config. */
  public static List<String> components(AgentConfig config) {
    List<String> components = new ArrayList<>(config.services());
    if (config.runs(Addresses.CNI_GATEWAY)) {
      components.add(Addresses.BRIDGE);
    }
    return components;
  }

  public Future<List<ComponentStatus>> check() {
    List<Future<ComponentStatus>> asks = new ArrayList<>();
    for (String component : components) {
      asks.add(vertx.eventBus()
          .<ComponentStatus>request(Addresses.nodeStatus(node, component), null, STATUS_TIMEOUT)
          .map(reply -> reply.body())
          .recover(err -> Future.succeededFuture(
              ComponentStatus.notReady(component, "no answer from the service: " + err.getMessage()))));
    }
    return Future.join(asks).transform(ignored -> Future.succeededFuture(asks.stream().map(Future::result).toList()));
  }

  public static boolean allReady(List<ComponentStatus> statuses) {
    return statuses.stream().allMatch(ComponentStatus::ready);
  }
}

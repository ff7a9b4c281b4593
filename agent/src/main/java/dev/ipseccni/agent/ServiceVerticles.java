package dev.ipseccni.agent;

import com.hazelcast.config.Config;
import com.hazelcast.core.HazelcastInstance;
import dev.ipseccni.bus.EventPublisher;
import io.vertx.core.Verticle;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The one place that knows every service: turns the agent's config into each service's
 * typed settings and verticle, in start order.
 */
final class ServiceVerticles {
  private final AgentConfig config;

  ServiceVerticles(AgentConfig config) {
    this.config = config;
  }

  /** Hazelcast settings the services need before the cluster starts. */
  List<Consumer<Config>> clusterCustomizers() {
    return List.of();
  }

  Map<String, Verticle> create(EventPublisher events, HazelcastInstance hazelcast) {
    Map<String, Verticle> verticles = new LinkedHashMap<>();
    for (String service : config.services()) {
      throw new IllegalStateException("service '" + service + "' is not part of this build yet");
    }
    return verticles;
  }
}

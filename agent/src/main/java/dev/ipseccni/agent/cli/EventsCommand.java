package dev.ipseccni.agent.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ipseccni.agent.AgentConfig;
import dev.ipseccni.agent.ConfigException;
import dev.ipseccni.agent.journal.KafkaEventReader;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ipsec-cni events}: the cluster bus as this node sees it (recent events, or follow
 * the live stream), or the Kafka journal read back from the beginning.
 */
@Command(name = "events", description = "Events of the cluster bus: recent, --follow live, or --from-kafka.")
public final class EventsCommand extends OperatorCommand {
  private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss.SSS")
      .withZone(ZoneId.systemDefault());

  @Option(names = {"-f", "--follow"}, description = "keep printing events as they happen")
  boolean follow;

  @Option(names = "--type", paramLabel = "T", description = "only these event types (tunnel, tunnel.down, …); repeatable")
  List<String> types = new ArrayList<>();

  @Option(names = "--node", paramLabel = "N", description = "only events published by these nodes; repeatable")
  List<String> nodes = new ArrayList<>();

  @Option(names = {"-n", "--limit"}, paramLabel = "N", defaultValue = "50",
      description = "how many recent events to show first (default ${DEFAULT-VALUE})")
  int limit;

  @Option(names = "--from-kafka", arity = "0..1", paramLabel = "BOOTSTRAP", fallbackValue = "",
      description = "read the Kafka journal instead (bootstrap host:port; default: journal.kafka.bootstrap of --config)")
  String fromKafka;

  @Option(names = "--topic", paramLabel = "TOPIC", description = "the journal's topic (default: from --config, else "
      + AgentConfig.Journal.DEFAULT_TOPIC + ")")
  String topic;

  @Override
  int run(AgentApiClient agent) throws AgentApiClient.AgentUnreachable, ConfigException {
    if (fromKafka != null) {
      return fromKafka();
    }
    String query = query();
    if (!follow) {
      JsonNode events = agent.get("/events/recent" + query + "&limit=" + limit);
      events.forEach(this::print);
      return 0;
    }
    agent.follow(query + "&replay=" + limit, event -> {
      print(event);
      return true;
    });
    return 0;
  }

  private int fromKafka() throws ConfigException {
    Optional<AgentConfig> config = options.agentConfig();
    String bootstrap = !fromKafka.isEmpty() ? fromKafka
        : config.map(c -> c.journal().bootstrap()).orElse("");
    if (bootstrap.isEmpty()) {
      throw new ConfigException(List.of("--from-kafka: no bootstrap given and no journal.kafka.bootstrap in the config"));
    }
    String t = topic != null ? topic : config.map(c -> c.journal().topic()).orElse(AgentConfig.Journal.DEFAULT_TOPIC);
    try {
      KafkaEventReader.read(bootstrap, t, follow, event -> {
        if (matches(event)) {
          print(event);
        }
        return true;
      });
      return 0;
    } catch (KafkaEventReader.JournalUnreachable e) {
      System.err.println("ipsec-cni: " + e.getMessage());
      return ApiOptions.EXIT_UNREACHABLE;
    }
  }

  private boolean matches(JsonNode event) {
    String address = text(event, "address");
    boolean typeOk = types.isEmpty() || types.stream().flatMap(t -> List.of(t.split(",")).stream())
        .anyMatch(t -> address.equals(t) || address.startsWith(t + "."));
    return typeOk && (nodes.isEmpty() || nodes.stream().flatMap(n -> List.of(n.split(",")).stream())
        .anyMatch(n -> n.equals(text(event, "node"))));
  }

  private String query() {
    StringBuilder q = new StringBuilder("?");
    types.forEach(t -> q.append("type=").append(URLEncoder.encode(t, StandardCharsets.UTF_8)).append('&'));
    nodes.forEach(n -> q.append("node=").append(URLEncoder.encode(n, StandardCharsets.UTF_8)).append('&'));
    return q.length() == 1 ? "?_" : q.substring(0, q.length() - 1);
  }

  private void print(JsonNode event) {
    if (options.json()) {
      System.out.println(event.toString());
    } else {
      System.out.println(line(event));
    }
    System.out.flush();
  }

  /** One line: time, node, sequence, type, then the payload's fields as key=value. */
  static String line(JsonNode event) {
    StringBuilder line = new StringBuilder();
    line.append(TIME.format(Instant.ofEpochMilli(event.path("timestampMillis").asLong()))).append(' ')
        .append(text(event, "node")).append(" #").append(event.path("seq").asLong()).append(' ')
        .append(text(event, "address"));
    flatten("", event.path("payload"), line);
    return line.toString();
  }

  private static void flatten(String prefix, JsonNode node, StringBuilder line) {
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> field = it.next();
      JsonNode v = field.getValue();
      if (prefix.isEmpty() && field.getKey().equals("type")) {
        continue;
      }
      if (v.isObject()) {
        flatten(prefix + field.getKey() + ".", v, line);
      } else if (!(v.isTextual() && v.asText().isEmpty()) && !(v.isArray() && v.isEmpty())) {
        line.append(' ').append(prefix).append(field.getKey()).append('=')
            .append(v.isTextual() ? v.asText() : v.toString());
      }
    }
  }
}

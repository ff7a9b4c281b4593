package dev.ipseccni.agent.journal;

import dev.ipseccni.agent.Poll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ipseccni.agent.AgentConfig;
import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.TestPorts;
import dev.ipseccni.bus.message.PodEvent;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Vertx;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The journal against a real Kafka 4 broker (child JVM, KRaft): each node writes its own
 * events keyed by its name, in order; with the broker away nothing waits and what does not
 * fit the buffer is dropped and counted; after the broker returns, publishing resumes.
 */
class KafkaJournalTest {
  private static final String TOPIC = "journal-test";

  @TempDir
  Path dir;

  private KafkaBroker broker;
  private Vertx vertx;
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();

  @BeforeEach
  void start() throws Exception {
    broker = new KafkaBroker(dir, "127.0.0.1", TestPorts.free(), TestPorts.free());
    broker.start();
    // the journal counts into the global registry; without a registry in it, counters count nothing
    Metrics.addRegistry(registry);
    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
  }

  @AfterEach
  void stop() throws Exception {
    if (vertx != null) {
      vertx.close().toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
    }
    broker.close();
    Metrics.removeRegistry(registry);
  }

  private final List<KafkaJournal> journals = new ArrayList<>();

  /** A node's publisher, as the agent wires it: every journal takes what it publishes (and keeps its own node's). */
  private EventPublisher publisher(String node, long incarnation) {
    EventPublisher p = new EventPublisher(vertx.eventBus(), node, incarnation);
    journals.forEach(j -> p.addSink(j::accept));
    return p;
  }

  private void deploy(String node, int buffer) throws Exception {
    // Shorter than the defaults so the outage below fits a test, same shape otherwise.
    KafkaJournal journal = new KafkaJournal(node, new AgentConfig.Journal(broker.bootstrap(), TOPIC, buffer),
        Map.of("max.block.ms", "2000", "request.timeout.ms", "3000", "delivery.timeout.ms", "90000"));
    journals.add(journal);
    vertx.deployVerticle(journal).toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  private static void publish(EventPublisher node, int count) {
    for (int i = 0; i < count; i++) {
      node.publish(Addresses.POD_ADDED, new PodEvent("ipsec-cni", node.node() + "-c" + i, "eth0", "", "", ""));
    }
  }

  @Test
  void eachNodesEventsArriveOnceInOrderAndSurviveABrokerRestart() throws Exception {
    deploy("node1", 40);
    deploy("node2", 10_000);
    EventPublisher node1 = publisher("node1", 1);
    EventPublisher node2 = publisher("node2", 2);
    // fewer than node1's buffer: a burst counts against it until Kafka acknowledges it
    publish(node1, 30);
    publish(node2, 50);
    awaitJournal("the first 80 events", 80);

    broker.stop();
    // Broker away: the bus and the journal's event loop keep going; node1's buffer holds 40.
    publish(node1, 100);
    awaitTrue("node1 drops what its buffer cannot hold", () -> counter("ipsec.cni.journal.dropped", "node1") == 60);
    awaitTrue("the bus still answers while Kafka is away", () -> vertx.eventBus().request("ping.test", "x")
        .recover(err -> io.vertx.core.Future.succeededFuture()).toCompletionStage().toCompletableFuture()
        .orTimeout(2, TimeUnit.SECONDS).handle((ok, err) -> err == null).join());

    broker.start();
    awaitJournal("the 40 events held through the outage", 80 + 40);
    publish(node1, 10);
    List<JsonNode> events = awaitJournal("everything buffered plus the new events", 80 + 40 + 10);

    List<Long> node1Seqs = seqs(events, "node1");
    List<Long> expected = new ArrayList<>(LongStream.rangeClosed(1, 70).boxed().toList());
    expected.addAll(LongStream.rangeClosed(131, 140).boxed().toList());
    assertEquals(expected, node1Seqs, "node1: in order, once each, the 60 dropped events missing");
    assertEquals(LongStream.rangeClosed(1, 50).boxed().toList(), seqs(events, "node2"));
    assertEquals(0.0, counter("ipsec.cni.journal.dropped", "node2"));
  }

  @Test
  void cliReadsTheJournalBack() throws Exception {
    deploy("node1", 1000);
    publish(publisher("node1", 7), 5);
    awaitJournal("five events", 5);
    PrintStream out = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    int exit;
    try {
      System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
      exit = new picocli.CommandLine(new dev.ipseccni.agent.Main()).execute("events", "--from-kafka",
          broker.bootstrap(), "--topic", TOPIC, "--node", "node1");
    } finally {
      System.setOut(out);
    }
    String text = captured.toString(StandardCharsets.UTF_8);
    assertEquals(0, exit, text);
    List<String> lines = text.lines().toList();
    assertEquals(5, lines.size(), text);
    for (int i = 0; i < 5; i++) {
      assertTrue(lines.get(i).contains("node1 #" + (i + 1) + " pod.added network=ipsec-cni containerId=node1-c" + i + " ifName=eth0"), lines.get(i));
    }
  }

  // ---------------------------------------------------------------- helpers

  private List<JsonNode> readAll() {
    List<JsonNode> events = new ArrayList<>();
    try {
      KafkaEventReader.read(broker.bootstrap(), TOPIC, false, e -> events.add(e));
    } catch (KafkaEventReader.JournalUnreachable e) {
      return List.of();
    }
    return events;
  }

  private List<JsonNode> awaitJournal(String what, int count) {
    List<List<JsonNode>> last = new ArrayList<>(List.of(List.of()));
    try {
      awaitTrue(what, () -> {
        last.set(0, readAll());
        return last.get(0).size() >= count;
      });
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + "; journal holds " + last.get(0).size() + " events");
    }
    assertEquals(count, last.get(0).size(), "no event twice");
    return last.get(0);
  }

  private static List<Long> seqs(List<JsonNode> events, String node) {
    return events.stream().filter(e -> e.path("node").asText().equals(node)).map(e -> e.path("seq").asLong()).toList();
  }

  private double counter(String name, String node) {
    var c = registry.find(name).tag("node", node).counter();
    return c == null ? 0 : c.count();
  }

  static void awaitTrue(String what, BooleanSupplier condition) {
    Poll.until(what, Duration.ofSeconds(90), Duration.ofMillis(200), condition);
  }
}

package dev.ipseccni.agent.journal;

import dev.ipseccni.agent.AgentConfig;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.JsonRecordCodec;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.kafka.client.producer.KafkaProducer;
import io.vertx.kafka.client.producer.KafkaProducerRecord;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * Writes every event of the cluster bus that this node publishes to a Kafka topic, keyed by
 * the node name (so one node's events share a partition and keep their order), as the
 * JSON of the {@link Event} envelope.
 *
 * <p>An audit log: acks=all and an idempotent producer, so an acknowledged event is on
 * every in-sync replica and a retry never writes it twice; delivery is at least once
 * across a producer restart, and (node, incarnation, seq) identifies each event.
 *
 * <p>Kafka being slow or away never reaches the CNI path: events go into a bounded
 * buffer here and nothing waits for Kafka. While Kafka is away the buffer fills; what does
 * not fit is dropped and counted ({@code ipsec_cni_journal_dropped_total}), and the per-node
 * sequence numbers show the gap to a reader. A send that fails is put back, in order, and
 * retried after a pause with one send at a time until one succeeds (the producer itself
 * reconnects).
 *
 * <p>Only this node's own events are written: every node runs a journal, so the topic holds
 * each event once, not once per node.
 */
public final class KafkaJournal extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(KafkaJournal.class.getName());
  private static final int MAX_IN_FLIGHT = 512;
  private static final long RETRY_PAUSE_MILLIS = 1_000;

  private final String node;
  private final AgentConfig.Journal settings;
  private final Map<String, String> producerConfig;

  // event-loop state
  private final ArrayDeque<Pending> buffer = new ArrayDeque<>();
  private final List<Pending> failedRound = new ArrayList<>();
  private final ConcurrentLinkedQueue<Event> inbox = new ConcurrentLinkedQueue<>();
  private volatile io.vertx.core.Context journalContext;
  private KafkaProducer<String, String> producer;
  private long ordinal;
  private int inFlight;
  /**
   * One send at a time until one succeeds: at start (the topic's metadata is not known yet,
   * so a send can fail after a later one succeeded) and after a failure.
   */
  private boolean degraded = true;
  private boolean pausing;
  private boolean warned;

  private final Counter delivered;
  private final Counter dropped;
  private final Counter retried;

  private record Pending(long ordinal, Event event) {}

  public KafkaJournal(String node, AgentConfig.Journal settings) {
    this(node, settings, Map.of());
  }

  /** @param overrides producer settings that replace the defaults (tests use shorter timeouts) */
  public KafkaJournal(String node, AgentConfig.Journal settings, Map<String, String> overrides) {
    this.node = node;
    this.settings = settings;
    this.producerConfig = producerConfig(node, settings.bootstrap());
    producerConfig.putAll(overrides);
    MeterRegistry registry = Metrics.globalRegistry;
    delivered = Counter.builder("ipsec.cni.journal.delivered").description("events acknowledged by Kafka")
        .tag("node", node).register(registry);
    dropped = Counter.builder("ipsec.cni.journal.dropped")
        .description("events not journalled: the buffer was full while Kafka was slow or away").tag("node", node)
        .register(registry);
    retried = Counter.builder("ipsec.cni.journal.retried").description("sends that failed and were queued again")
        .tag("node", node).register(registry);
    Gauge.builder("ipsec.cni.journal.buffered", this, j -> j.bufferedApprox).description("events waiting for Kafka")
        .tag("node", node).register(registry);
  }

  private volatile int bufferedApprox;

  /** The delivery settings an audit log needs. */
  static Map<String, String> producerConfig(String node, String bootstrap) {
    Map<String, String> c = new LinkedHashMap<>();
    c.put("bootstrap.servers", bootstrap);
    c.put("client.id", "ipsec-cni-journal-" + node);
    c.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
    c.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
    c.put("acks", "all");
    c.put("enable.idempotence", "true");
    c.put("max.in.flight.requests.per.connection", "5");
    c.put("retries", String.valueOf(Integer.MAX_VALUE));
    // How long the producer keeps a record it accepted while the broker is away; after
    // that the send fails here and the record is queued again.
    c.put("delivery.timeout.ms", "120000");
    c.put("request.timeout.ms", "15000");
    // A send blocks (on a worker thread, never the event loop) at most this long when the
    // topic's metadata is unknown, e.g. Kafka was never reachable.
    c.put("max.block.ms", "5000");
    // Once the topic's metadata is known, keep it: a send that must wait for metadata can
    // time out while a later one succeeds, which would break the per-node order.
    c.put("metadata.max.idle.ms", String.valueOf(24 * 3600 * 1000));
    c.put("linger.ms", "5");
    c.put("reconnect.backoff.ms", "200");
    c.put("reconnect.backoff.max.ms", "5000");
    c.put("compression.type", "none");
    return c;
  }

  @Override
  public Future<?> start() {
    producer = KafkaProducer.create(vertx, producerConfig);
    producer.exceptionHandler(err -> problem("producer: " + err.getMessage()));
    LOG.info(() -> "Kafka journal: events of " + node + " to topic " + settings.topic() + " at "
        + settings.bootstrap());
    journalContext = context;
    drainInbox();
    return Future.succeededFuture();
  }

  /**
   * Takes one of this node's events from its {@link dev.ipseccni.bus.EventPublisher} (a
   * sink: called in sequence order, from any thread, must not block). Events published
   * before the verticle started wait in the inbox, so the journal starts at event 1.
   */
  public void accept(Event event) {
    inbox.add(event);
    io.vertx.core.Context c = journalContext;
    if (c != null) {
      c.runOnContext(v -> drainInbox());
    }
  }

  private void drainInbox() {
    for (Event e = inbox.poll(); e != null; e = inbox.poll()) {
      offer(e);
    }
  }

  @Override
  public Future<?> stop() {
    journalContext = null;
    // Give what is buffered a short chance; the agent's stop must not hang on Kafka.
    return producer == null ? Future.succeededFuture() : producer.close(3_000);
  }

  /** Takes an event; never waits. */
  void offer(Event event) {
    if (!event.node().equals(node)) {
      return;
    }
    if (buffer.size() + inFlight + failedRound.size() >= settings.bufferEvents()) {
      dropped.increment();
      return;
    }
    buffer.addLast(new Pending(++ordinal, event));
    pump();
  }

  private void pump() {
    while (!pausing && failedRound.isEmpty() && !buffer.isEmpty() && inFlight < (degraded ? 1 : MAX_IN_FLIGHT)) {
      Pending p = buffer.pollFirst();
      inFlight++;
      KafkaProducerRecord<String, String> record = KafkaProducerRecord.create(settings.topic(), p.event().node(),
          new String(JsonRecordCodec.toJson(p.event()), StandardCharsets.UTF_8));
      producer.send(record).onComplete(done -> {
        inFlight--;
        if (done.succeeded()) {
          delivered.increment();
          degraded = false;
          if (warned) {
            warned = false;
            LOG.info("Kafka journal: publishing again");
          }
        } else {
          retried.increment();
          failedRound.add(p);
          problem(done.cause().getMessage());
        }
        settle();
      });
    }
    bufferedApprox = buffer.size() + inFlight + failedRound.size();
  }

  /** Once every send of a failed round has answered, puts them back in order and pauses before trying again. */
  private void settle() {
    if (!failedRound.isEmpty() && inFlight == 0) {
      failedRound.sort(Comparator.comparingLong(Pending::ordinal).reversed());
      failedRound.forEach(buffer::addFirst);
      failedRound.clear();
      degraded = true;
      pausing = true;
      vertx.setTimer(RETRY_PAUSE_MILLIS, t -> {
        pausing = false;
        pump();
      });
    } else if (failedRound.isEmpty()) {
      pump();
    }
    bufferedApprox = buffer.size() + inFlight + failedRound.size();
  }

  /** Logged once per outage, not once per event. */
  private void problem(String message) {
    if (!warned) {
      warned = true;
      LOG.warning(() -> "Kafka journal: cannot publish (" + message + "); buffering up to " + settings.bufferEvents()
          + " events, retrying");
    }
  }
}

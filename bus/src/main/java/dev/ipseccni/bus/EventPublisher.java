package dev.ipseccni.bus;

import dev.ipseccni.bus.message.Payload;
import io.vertx.core.eventbus.EventBus;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Publishes this node's events to the cluster, numbering them. One instance per agent
 * process, shared by all its services, so the sequence is per node.
 */
public final class EventPublisher {
  private final EventBus bus;
  private final String node;
  private final long incarnation;
  private long seq;
  private final List<Consumer<Event>> sinks = new CopyOnWriteArrayList<>();

  public EventPublisher(EventBus bus, String node, long incarnation) {
    this.bus = bus;
    this.node = node;
    this.incarnation = incarnation;
  }

  public String node() {
    return node;
  }

  /**
   * Hands every event this node publishes to {@code sink} too, in sequence order and
   * before it goes on the bus. For a local recorder of this node's own events (the Kafka
   * journal): the clustered bus does not keep the order of publishes to different
   * addresses (the first publish to an address waits on a cluster lookup and is overtaken).
   * The sink is called under this publisher's lock: it must not block.
   */
  public void addSink(Consumer<Event> sink) {
    sinks.add(sink);
  }

  /** Publishes and returns the event as sent. */
  public synchronized Event publish(String address, Payload payload) {
    Event event = new Event(address, node, incarnation, ++seq, System.currentTimeMillis(), payload);
    for (Consumer<Event> sink : sinks) {
      sink.accept(event);
    }
    bus.publish(address, event);
    return event;
  }
}

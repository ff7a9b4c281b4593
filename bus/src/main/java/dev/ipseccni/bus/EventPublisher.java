package dev.ipseccni.bus;

import dev.ipseccni.bus.message.Payload;
import io.vertx.core.eventbus.EventBus;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Publishes this node's events to the cluster, numbering them. One instance per agent
 * process, shared by all its services, so the sequence is per node.
 */
public final class EventPublisher {
  private final EventBus bus;
  private final String node;
  private final long incarnation;
  private final AtomicLong seq = new AtomicLong();

  public EventPublisher(EventBus bus, String node, long incarnation) {
    this.bus = bus;
    this.node = node;
    this.incarnation = incarnation;
  }

  public String node() {
    return node;
  }

  /** Publishes and returns the event as sent. */
  public Event publish(String address, Payload payload) {
    Event event = new Event(address, node, incarnation, seq.incrementAndGet(), System.currentTimeMillis(), payload);
    bus.publish(address, event);
    return event;
  }
}

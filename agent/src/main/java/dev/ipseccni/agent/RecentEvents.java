package dev.ipseccni.agent;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.Event;
import io.vertx.core.Future;
import io.vertx.core.eventbus.EventBus;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * The last events this node received from the cluster bus, every node's: what /state
 * shows and what an operator reads first when something changed.
 */
final class RecentEvents {
  private final int capacity;
  private final ArrayDeque<Event> events = new ArrayDeque<>();

  RecentEvents(int capacity) {
    this.capacity = capacity;
  }

  /** Completes once every subscription is known to the cluster. */
  Future<Void> subscribe(EventBus bus) {
    List<Future<Void>> registered = new ArrayList<>();
    for (String address : Addresses.EVENTS) {
      registered.add(bus.<Event>consumer(address, message -> record(message.body())).completion());
    }
    return Future.all(registered).mapEmpty();
  }

  synchronized void record(Event event) {
    if (events.size() == capacity) {
      events.removeFirst();
    }
    events.addLast(event);
  }

  synchronized List<Event> snapshot() {
    return List.copyOf(events);
  }
}

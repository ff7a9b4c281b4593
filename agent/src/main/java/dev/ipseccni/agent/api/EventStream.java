package dev.ipseccni.agent.api;

import dev.ipseccni.bus.Event;
import io.vertx.core.Context;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * GET /events: every event of the cluster bus as Server-Sent Events, one {@code data:}
 * line of JSON (the {@link Event} envelope) per event, {@code id: node:incarnation:seq}.
 * Query: {@code type} (comma-separated; {@code tunnel} matches tunnel.up and tunnel.down,
 * {@code tunnel.down} only that), {@code node} (comma-separated publishers), and
 * {@code replay=N} to get up to N recent matching events first.
 *
 * <p>A slow client never slows the bus: when its connection's write queue is full, events
 * are dropped for it and counted; the next event it gets carries the count in a comment.
 */
final class EventStream {
  private final ClusterView view;
  private final List<Client> clients = new ArrayList<>();
  private final AtomicLong dropped = new AtomicLong();
  private Context context;

  EventStream(ClusterView view) {
    this.view = view;
  }

  /** The stream writes on the API verticle's context; events from the bus are handed over to it. */
  void attach(Context context) {
    this.context = context;
    view.onEvent(event -> context.runOnContext(v -> deliver(event)));
  }

  long dropped() {
    return dropped.get();
  }

  record Filter(Set<String> types, Set<String> nodes) {
    boolean matches(Event e) {
      boolean typeOk = types.isEmpty() || types.stream()
          .anyMatch(t -> e.address().equals(t) || e.address().startsWith(t + "."));
      return typeOk && (nodes.isEmpty() || nodes.contains(e.node()));
    }

    static Filter of(List<String> types, List<String> nodes) {
      return new Filter(split(types), split(nodes));
    }

    private static Set<String> split(List<String> values) {
      Set<String> out = new LinkedHashSet<>();
      for (String v : values) {
        Arrays.stream(v.split(",")).map(String::trim).filter(s -> !s.isEmpty()).forEach(out::add);
      }
      return out;
    }
  }

  private static final class Client {
    final HttpServerResponse response;
    final Filter filter;
    long missed;

    Client(HttpServerResponse response, Filter filter) {
      this.response = response;
      this.filter = filter;
    }
  }

  void open(RoutingContext ctx) {
    Filter filter = Filter.of(ctx.queryParam("type"), ctx.queryParam("node"));
    int replay;
    try {
      replay = ctx.queryParam("replay").isEmpty() ? 0 : Integer.parseInt(ctx.queryParam("replay").get(0));
    } catch (NumberFormatException e) {
      ctx.response().setStatusCode(400).end("replay: expected a number\n");
      return;
    }
    HttpServerResponse response = ctx.response();
    response.setChunked(true)
        .putHeader("content-type", "text/event-stream")
        .putHeader("cache-control", "no-cache")
        .putHeader("x-accel-buffering", "no");
    // The first bytes go out at once, so a client knows it is connected before any event.
    response.write(": ipsec-cni events from " + view.self() + "\nretry: 2000\n\n");
    Client client = new Client(response, filter);
    if (replay > 0) {
      List<Event> matching = view.recent().stream().filter(filter::matches).toList();
      matching.subList(Math.max(0, matching.size() - replay), matching.size()).forEach(e -> write(client, e));
    }
    context.runOnContext(v -> {
      clients.add(client);
      response.closeHandler(x -> context.runOnContext(y -> clients.remove(client)));
    });
  }

  /** GET /events/recent: the last matching events this node received, oldest first, as a JSON array. */
  void recent(RoutingContext ctx) {
    Filter filter = Filter.of(ctx.queryParam("type"), ctx.queryParam("node"));
    int limit;
    try {
      limit = ctx.queryParam("limit").isEmpty() ? 100 : Integer.parseInt(ctx.queryParam("limit").get(0));
    } catch (NumberFormatException e) {
      ctx.response().setStatusCode(400).end("limit: expected a number\n");
      return;
    }
    List<Event> matching = view.recent().stream().filter(filter::matches).toList();
    HttpApi.json(ctx, 200, matching.subList(Math.max(0, matching.size() - Math.max(0, limit)), matching.size()));
  }

  private void deliver(Event event) {
    for (Client client : clients) {
      if (client.filter.matches(event)) {
        write(client, event);
      }
    }
  }

  private void write(Client client, Event event) {
    if (client.response.writeQueueFull()) {
      client.missed++;
      dropped.incrementAndGet();
      return;
    }
    StringBuilder frame = new StringBuilder(256);
    if (client.missed > 0) {
      frame.append(": dropped ").append(client.missed).append(" events (client too slow)\n");
      client.missed = 0;
    }
    frame.append("id: ").append(event.node()).append(':').append(event.incarnation()).append(':')
        .append(event.seq()).append('\n');
    frame.append("data: ").append(HttpApi.eventJson(event)).append("\n\n");
    client.response.write(frame.toString());
  }

  void keepAlive() {
    for (Client client : clients) {
      if (!client.response.writeQueueFull()) {
        client.response.write(": keep-alive\n\n");
      }
    }
  }

  void closeAll() {
    for (Client client : List.copyOf(clients)) {
      client.response.end();
    }
    clients.clear();
  }
}

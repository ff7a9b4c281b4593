package dev.ipseccni.agent.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ipseccni.bus.JsonRecordCodec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.function.Predicate;
import java.util.stream.Stream;

/** The CLI's side of the agent's HTTP API: GET JSON, follow the event stream. */
final class AgentApiClient {

  /** The agent could not be reached or answered nonsense: the message says which and what to check. */
  static final class AgentUnreachable extends Exception {
    AgentUnreachable(String message) {
      super(message);
    }
  }

  private final URI base;
  private final HttpClient http;

  AgentApiClient(URI base) {
    this.base = base;
    this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build();
  }

  URI base() {
    return base;
  }

  /** GETs a JSON document; 503 from /readyz and /state is a normal answer, not an error. */
  JsonNode get(String path) throws AgentUnreachable {
    HttpRequest request = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(10)).GET().build();
    HttpResponse<String> response;
    try {
      response = http.send(request, HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw unreachable(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AgentUnreachable("interrupted");
    }
    if (response.statusCode() != 200 && response.statusCode() != 503) {
      throw new AgentUnreachable("the agent at " + base + " answered " + path + " with HTTP " + response.statusCode()
          + ": " + response.body().strip());
    }
    try {
      return JsonRecordCodec.MAPPER.readTree(response.body());
    } catch (IOException e) {
      throw new AgentUnreachable("the agent at " + base + " answered " + path + " with something that is not JSON: "
          + e.getMessage());
    }
  }

  /**
   * Follows /events (Server-Sent Events) and hands each event's JSON to the consumer until it
   * returns false or the agent closes the stream.
   */
  void follow(String query, Predicate<JsonNode> onEvent) throws AgentUnreachable {
    HttpRequest request = HttpRequest.newBuilder(base.resolve("/events" + query))
        .header("accept", "text/event-stream").GET().build();
    HttpResponse<Stream<String>> response;
    try {
      response = http.send(request, HttpResponse.BodyHandlers.ofLines());
    } catch (IOException e) {
      throw unreachable(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    }
    if (response.statusCode() != 200) {
      throw new AgentUnreachable("the agent at " + base + " refused the event stream: HTTP " + response.statusCode());
    }
    try (Stream<String> lines = response.body()) {
      var it = lines.iterator();
      while (it.hasNext()) {
        String line = it.next();
        if (line.startsWith("data: ")) {
          JsonNode event = JsonRecordCodec.MAPPER.readTree(line.substring(6));
          if (!onEvent.test(event)) {
            return;
          }
        }
      }
    } catch (IOException | UncheckedIOException e) {
      throw new AgentUnreachable("the event stream from " + base + " broke: " + e.getMessage());
    }
    throw new AgentUnreachable("the agent at " + base + " closed the event stream (stopping?)");
  }

  private AgentUnreachable unreachable(IOException e) {
    String why;
    if (e instanceof ConnectException || e.getCause() instanceof ConnectException) {
      why = "connection refused";
    } else if (e instanceof HttpConnectTimeoutException) {
      why = "no answer to connect within 3 s";
    } else if (e instanceof HttpTimeoutException) {
      why = "no reply within 10 s";
    } else {
      why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }
    return new AgentUnreachable("cannot reach the ipsec-cni agent at " + base + ": " + why
        + " (is the agent running on this node? is api.address/api.port right? use --api or --config)");
  }
}

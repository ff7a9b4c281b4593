package dev.ipseccni.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ipseccni.bus.message.AddressEvent;
import dev.ipseccni.bus.message.AgentEvent;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.FirewallEvent;
import dev.ipseccni.bus.message.GcRequest;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.MemberEvent;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.bus.message.Payload;
import dev.ipseccni.bus.message.PodEvent;
import dev.ipseccni.bus.message.TunnelEvent;
import io.vertx.core.buffer.Buffer;
import java.io.UncheckedIOException;
import java.util.List;
import org.junit.jupiter.api.Test;

class JsonRecordCodecTest {

  private static <T> T throughWire(JsonRecordCodec<T> codec, T value) {
    Buffer wire = Buffer.buffer().appendString("prefix");
    codec.encodeToWire(wire, value);
    return codec.decodeFromWire("prefix".length(), wire);
  }

  @Test
  void everyPayloadKindSurvivesTheClusterWire() {
    NodeBlockLease lease = new NodeBlockLease("node1", "192.0.2.11", "10.128.1.0/24", 3, 1_700_000_000_000L);
    List<Payload> payloads = List.of(
        new LeaseEvent(lease),
        new AddressEvent("ipsec-cni", "c1", "eth0", "10.128.1.2/24"),
        new PodEvent("ipsec-cni", "c1", "eth0", "default", "web-1", "10.128.1.2/24"),
        new TunnelEvent("node2", "10.128.2.0/24", "peer unreachable"),
        new FirewallEvent(List.of("IPSEC-CNI-FWD"), List.of("FORWARD jump")),
        new AgentEvent("0.1.0", "192.0.2.11", List.of("ipam")),
        new MemberEvent("node3", "192.0.2.13:5701"));
    JsonRecordCodec<Event> codec = new JsonRecordCodec<>(Event.class);
    long seq = 0;
    for (Payload payload : payloads) {
      Event event = new Event("some.address", "node1", 42L, ++seq, 1_700_000_000_123L, payload);
      assertEquals(event, throughWire(codec, event));
    }
  }

  @Test
  void requestRecordsSurviveTheClusterWire() {
    GcRequest gc = new GcRequest("ipsec-cni", List.of(new GcRequest.Attachment("c1", "eth0")));
    assertEquals(gc, throughWire(new JsonRecordCodec<>(GcRequest.class), gc));
    AllocateRequest add = new AllocateRequest("ipsec-cni", "c1", "eth0");
    assertEquals(add, throughWire(new JsonRecordCodec<>(AllocateRequest.class), add));
    AllocateRequest requested = new AllocateRequest("ipsec-cni", "c2", "eth0", "10.128.1.9");
    assertEquals(requested, throughWire(new JsonRecordCodec<>(AllocateRequest.class), requested));
  }

  @Test
  void allocateRequestOfAnOlderSenderAsksForNoAddress() {
    // A gateway from before requested addresses sends no requestedAddress: IPAM picks, as it did then.
    AllocateRequest old = JsonRecordCodec.fromJson(
        "{\"network\":\"ipsec-cni\",\"containerId\":\"c1\",\"ifName\":\"eth0\"}".getBytes(),
        AllocateRequest.class);
    assertEquals(new AllocateRequest("ipsec-cni", "c1", "eth0", ""), old);
    assertEquals(false, old.requestsAnAddress());
    String json = new String(JsonRecordCodec.toJson(new AllocateRequest("n", "c", "eth0", "10.128.1.9")),
        java.nio.charset.StandardCharsets.UTF_8);
    assertEquals("{\"network\":\"n\",\"containerId\":\"c\",\"ifName\":\"eth0\",\"requestedAddress\":\"10.128.1.9\"}",
        json, "only the record's fields travel");
  }

  @Test
  void eventJsonNamesThePayloadType() {
    Event event = new Event("tunnel.up", "node1", 1, 1, 2, new TunnelEvent("node2", "10.128.2.0/24", ""));
    String json = new String(JsonRecordCodec.toJson(event), java.nio.charset.StandardCharsets.UTF_8);
    assertEquals(true, json.contains("\"type\":\"tunnel\""), json);
  }

  @Test
  void garbageIsAClearDecodeError() {
    UncheckedIOException e = assertThrows(UncheckedIOException.class,
        () -> JsonRecordCodec.fromJson("{\"address\":".getBytes(), Event.class));
    assertEquals(true, e.getMessage().startsWith("cannot decode Event"), e.getMessage());
  }
}

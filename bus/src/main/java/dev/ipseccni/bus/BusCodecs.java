package dev.ipseccni.bus;

import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.CheckRequest;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.GcRequest;
import dev.ipseccni.bus.message.GcResult;
import dev.ipseccni.bus.message.LeaseSnapshot;
import dev.ipseccni.bus.message.ReleaseRequest;
import io.vertx.core.eventbus.EventBus;
import java.util.List;

/** Registers the JSON codec for every message type, once per Vert.x instance, before any service starts. */
public final class BusCodecs {
  private BusCodecs() {}

  static final List<Class<?>> MESSAGE_TYPES = List.of(
      Event.class, AllocateRequest.class, Allocation.class, ReleaseRequest.class, CheckRequest.class,
      GcRequest.class, GcResult.class, ComponentStatus.class, LeaseSnapshot.class);

  public static void register(EventBus bus) {
    for (Class<?> type : MESSAGE_TYPES) {
      registerOne(bus, type);
    }
  }

  private static <T> void registerOne(EventBus bus, Class<T> type) {
    bus.registerDefaultCodec(type, new JsonRecordCodec<>(type));
  }
}

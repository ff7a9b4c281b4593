package dev.ipseccni.bus;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.MessageCodec;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The one codec of the bus: any message record travels as JSON (Jackson), framed with a
 * length on the cluster wire. Records are immutable, so a local delivery passes the same
 * instance.
 */
public final class JsonRecordCodec<T> implements MessageCodec<T, T> {

  /** The shared mapper: records in, records out, unknown fields tolerated for rolling upgrades. */
  public static final ObjectMapper MAPPER = new ObjectMapper()
      .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  private final Class<T> type;

  public JsonRecordCodec(Class<T> type) {
    this.type = type;
  }

  public static byte[] toJson(Object value) {
    try {
      return MAPPER.writeValueAsBytes(value);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot encode " + value.getClass().getSimpleName(), e);
    }
  }

  public static <V> V fromJson(byte[] json, Class<V> type) {
    try {
      return MAPPER.readValue(json, type);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot decode " + type.getSimpleName() + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void encodeToWire(Buffer buffer, T value) {
    byte[] json = toJson(value);
    buffer.appendInt(json.length);
    buffer.appendBytes(json);
  }

  @Override
  public T decodeFromWire(int pos, Buffer buffer) {
    int length = buffer.getInt(pos);
    return fromJson(buffer.getBytes(pos + 4, pos + 4 + length), type);
  }

  @Override
  public T transform(T value) {
    return value;
  }

  @Override
  public String name() {
    return "json:" + type.getName();
  }

  @Override
  public byte systemCodecID() {
    return -1;
  }
}

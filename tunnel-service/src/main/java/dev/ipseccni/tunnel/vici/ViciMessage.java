package dev.ipseccni.tunnel.vici;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A VICI message: an ordered map whose values are a string, a nested section (another
 * message) or a list of strings. Immutable; build one with {@link #builder()}.
 */
public final class ViciMessage {
  private static final ViciMessage EMPTY = new ViciMessage(Map.of());

  private final Map<String, Object> entries;

  private ViciMessage(Map<String, Object> entries) {
    this.entries = entries;
  }

  public static ViciMessage empty() {
    return EMPTY;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Keys in wire order; each maps to a String, a ViciMessage or a List of String. */
  public Map<String, Object> entries() {
    return entries;
  }

  public boolean isEmpty() {
    return entries.isEmpty();
  }

  public Optional<String> value(String key) {
    return entries.get(key) instanceof String s ? Optional.of(s) : Optional.empty();
  }

  public Optional<ViciMessage> section(String key) {
    return entries.get(key) instanceof ViciMessage m ? Optional.of(m) : Optional.empty();
  }

  /** The list under {@code key}, empty when there is none. */
  @SuppressWarnings("unchecked")
  public List<String> list(String key) {
    return entries.get(key) instanceof List<?> l ? (List<String>) l : List.of();
  }

  /** The sections of this message in order, by name (e.g. the connections of a list-sa event). */
  public Map<String, ViciMessage> sections() {
    Map<String, ViciMessage> out = new LinkedHashMap<>();
    entries.forEach((k, v) -> {
      if (v instanceof ViciMessage m) {
        out.put(k, m);
      }
    });
    return out;
  }

  /** The VICI convention for booleans: "yes" is true. */
  public boolean isYes(String key) {
    return value(key).map("yes"::equals).orElse(false);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ViciMessage other && entries.equals(other.entries);
  }

  @Override
  public int hashCode() {
    return entries.hashCode();
  }

  /**
   * Renders the structure with values. Messages carrying secrets (load-shared) must not be
   * logged; {@link ViciSession} never logs message bodies.
   */
  @Override
  public String toString() {
    StringBuilder out = new StringBuilder("{");
    entries.forEach((k, v) -> {
      if (out.length() > 1) {
        out.append(", ");
      }
      out.append(k).append('=').append(v);
    });
    return out.append('}').toString();
  }

  /** Builds a message in insertion order; a key given twice keeps its first position and last value. */
  public static final class Builder {
    private final Map<String, Object> entries = new LinkedHashMap<>();

    public Builder put(String key, String value) {
      entries.put(checkKey(key), Objects.requireNonNull(value, key));
      return this;
    }

    public Builder put(String key, long value) {
      return put(key, Long.toString(value));
    }

    public Builder put(String key, boolean value) {
      return put(key, value ? "yes" : "no");
    }

    public Builder section(String key, ViciMessage section) {
      entries.put(checkKey(key), Objects.requireNonNull(section, key));
      return this;
    }

    public Builder list(String key, List<String> items) {
      List<String> copy = new ArrayList<>(items.size());
      for (String item : items) {
        copy.add(Objects.requireNonNull(item, key));
      }
      entries.put(checkKey(key), Collections.unmodifiableList(copy));
      return this;
    }

    public ViciMessage build() {
      return entries.isEmpty() ? EMPTY : new ViciMessage(Collections.unmodifiableMap(new LinkedHashMap<>(entries)));
    }

    private static String checkKey(String key) {
      Objects.requireNonNull(key, "key");
      if (key.isEmpty() || key.length() > 255) {
        throw new IllegalArgumentException("VICI key must be 1..255 bytes: '" + key + "'");
      }
      return key;
    }
  }
}

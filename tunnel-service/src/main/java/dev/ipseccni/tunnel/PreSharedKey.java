package dev.ipseccni.tunnel;

import java.security.MessageDigest;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * The IKE pre-shared key of one node pair. Its text is what charon is given (via VICI
 * {@code load-shared} or swanctl.conf {@code secret}); {@link #toString()} never shows it.
 */
public final class PreSharedKey {
  private final String text;

  PreSharedKey(String text) {
    this.text = Objects.requireNonNull(text);
  }

  /** The key as charon must see it. Goes to charon only: never to logs, events or the bus. */
  public String reveal() {
    return text;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof PreSharedKey other && MessageDigest.isEqual(
        text.getBytes(StandardCharsets.US_ASCII), other.text.getBytes(StandardCharsets.US_ASCII));
  }

  @Override
  public int hashCode() {
    return text.hashCode();
  }

  @Override
  public String toString() {
    return "PreSharedKey[redacted]";
  }
}

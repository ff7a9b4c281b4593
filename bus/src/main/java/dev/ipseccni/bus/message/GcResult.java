package dev.ipseccni.bus.message;

import java.util.List;

/** What a GC released. */
public record GcResult(List<Allocation> released) {
  public GcResult {
    released = List.copyOf(released);
  }
}

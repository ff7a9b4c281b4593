package dev.ipseccni.bus.message;

import java.util.List;

/**
 * One local service's answer to a node status request: whether it is ready, and if not,
 * the condition that fails, in words an operator can act on.
 *
 * @param degraded what works only in part while the component is ready (one line each, e.g.
 *     a peer tunnel that does not come up): the node keeps taking pods, but says so
 */
public record ComponentStatus(String component, boolean ready, String reason, List<String> degraded) {
  public ComponentStatus {
    // absent in the JSON of an older agent
    degraded = degraded == null ? List.of() : List.copyOf(degraded);
  }

  public static ComponentStatus ready(String component) {
    return new ComponentStatus(component, true, "", List.of());
  }

  public static ComponentStatus notReady(String component, String reason) {
    return new ComponentStatus(component, false, reason, List.of());
  }

  /** Ready, with what does not work (empty: wholly ready). */
  public static ComponentStatus degraded(String component, List<String> degraded) {
    return new ComponentStatus(component, true, "", degraded);
  }
}

package dev.ipseccni.bus.message;

/**
 * One local service's answer to a node status request: whether it is ready, and if not,
 * the condition that fails, in words an operator can act on.
 */
public record ComponentStatus(String component, boolean ready, String reason) {
  public static ComponentStatus ready(String component) {
    return new ComponentStatus(component, true, "");
  }

  public static ComponentStatus notReady(String component, String reason) {
    return new ComponentStatus(component, false, reason);
  }
}

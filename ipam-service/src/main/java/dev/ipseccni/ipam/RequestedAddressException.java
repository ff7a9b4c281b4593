package dev.ipseccni.ipam;

/**
 * The address a runtime requested cannot be given to the container that asked: the
 * message names the address, the node and why, so an operator can act on it.
 */
public final class RequestedAddressException extends Exception {
  private static final long serialVersionUID = 1L;

  /** Why the requested address was refused. */
  public enum Reason {
    /** Not inside the block this node holds (another node's block, outside the cluster CIDR, other family). */
    OUTSIDE_BLOCK,
    /** The block's network, gateway (the bridge's own address) or broadcast address. */
    RESERVED,
    /** Another container's interface holds it. */
    IN_USE,
    /** This container's interface already holds a different address. */
    DIFFERENT_ADDRESS_HELD
  }

  private final Reason reason;
  private final String address;

  RequestedAddressException(Reason reason, String address, String message) {
    super(message);
    this.reason = reason;
    this.address = address;
  }

  public Reason reason() {
    return reason;
  }

  /** The requested address, as the runtime wrote it. */
  public String address() {
    return address;
  }
}

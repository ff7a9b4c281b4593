package dev.ipseccni.cni;

/**
 * A CNI error: its spec code, a message an operator can act on, and details. Thrown or
 * carried by a failed Future; the gateway turns it into the plugin's stdout and exit code.
 */
public final class CniError extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public static final int INCOMPATIBLE_VERSION = 1;
  public static final int UNSUPPORTED_FIELD = 2;
  public static final int UNKNOWN_CONTAINER = 3;
  public static final int INVALID_ENVIRONMENT = 4;
  public static final int IO_FAILURE = 5;
  public static final int DECODE_FAILURE = 6;
  public static final int INVALID_NETWORK_CONFIG = 7;
  public static final int TRY_AGAIN_LATER = 11;
  public static final int NOT_AVAILABLE = 50;
  public static final int NOT_AVAILABLE_DEGRADED = 51;
  // Our own, 100 and up. 100 to 103 come from IPAM (dev.ipseccni.bus.message.Failures has their reasons).
  /** The node's block has no free address. */
  public static final int POOL_EXHAUSTED = 100;
  /** The requested address cannot be given: outside this node's block, reserved, or held by another interface. */
  public static final int REQUESTED_ADDRESS_UNAVAILABLE = 102;
  /** CHECK of a pod whose address is in a block this node no longer holds: recreate the pod. */
  public static final int ADDRESS_NO_LONGER_OURS = 103;
  /** The delegate `bridge` plugin failed; details carry its own error. */
  public static final int DATAPATH_FAILED = 110;
  /** ADD for an interface that already exists in the pod's namespace. */
  public static final int INTERFACE_EXISTS = 111;
  /** Something went wrong inside the gateway. */
  public static final int INTERNAL = 199;

  private final int code;
  private final String details;

  public CniError(int code, String msg, String details) {
    super(msg == null || msg.isEmpty() ? "CNI error " + code : msg);
    this.code = code;
    this.details = details == null ? "" : details;
  }

  public CniError(int code, String msg) {
    this(code, msg, "");
  }

  public int code() {
    return code;
  }

  public String details() {
    return details;
  }

  @Override
  public String toString() {
    return "CNI error " + code + ": " + getMessage() + (details.isEmpty() ? "" : " (" + details + ")");
  }
}

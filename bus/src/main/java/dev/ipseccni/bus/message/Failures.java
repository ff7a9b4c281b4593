package dev.ipseccni.bus.message;

/**
 * Failure codes carried in {@code Message.fail(code, message)} of request/reply
 * exchanges. They are CNI error codes, so the gateway passes them through unchanged.
 */
public final class Failures {
  private Failures() {}

  /** The container is unknown (CHECK of an allocation that does not exist). */
  public static final int UNKNOWN_CONTAINER = 3;
  /** Not ready yet (no lease, journal not replayed): the runtime should retry later. */
  public static final int TRY_AGAIN_LATER = 11;
  /** The node's block has no free address. */
  public static final int POOL_EXHAUSTED = 100;
  /** The allocation could not be persisted; it was not handed out. */
  public static final int JOURNAL_FAILED = 101;
  /**
   * The address the runtime requested cannot be given to this container: it is outside the
   * block this node holds, it is the block's network, gateway or broadcast address, another
   * container holds it, or this container's interface already holds a different one. None of
   * the spec's codes says this (7 is a config that fails validation; 11 promises a retry
   * helps), so it is ours; the message names the address and the reason.
   */
  public static final int REQUESTED_ADDRESS_UNAVAILABLE = 102;
  /**
   * CHECK of a container whose address belongs to a block this node no longer holds: the node
   * lost the block after missing its lease renewals for longer than the grace, and another
   * node may give the address to a pod of its own. The pod must be recreated (kubelet does so
   * when CHECK fails). Ours, like 102: no spec code says "this attachment is broken for good".
   */
  public static final int ADDRESS_NO_LONGER_OURS = 103;
  /** A request that does not make sense (bad field). */
  public static final int INVALID_REQUEST = 7;
}

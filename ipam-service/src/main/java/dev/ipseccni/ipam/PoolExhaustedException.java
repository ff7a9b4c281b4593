package dev.ipseccni.ipam;

/** The node's block has no free address left. The message names node, block and size. */
public final class PoolExhaustedException extends Exception {
  public PoolExhaustedException(String message) {
    super(message);
  }
}

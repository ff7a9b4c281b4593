package dev.ipseccni.bus.message;

import java.util.Objects;

/**
 * A node's claim on one block of the cluster CIDR. The epoch grows each time the block
 * changes hands, so a stale holder can be told from the current one.
 *
 * @param node node name
 * @param underlayAddress the node's address on the underlay (the tunnel endpoint)
 * @param block the block in CIDR notation, e.g. 10.128.1.0/24
 * @param epoch claim generation of this block
 * @param renewedAtMillis wall-clock time of the last renewal
 */
public record NodeBlockLease(String node, String underlayAddress, String block, long epoch, long renewedAtMillis) {
  public NodeBlockLease {
    Objects.requireNonNull(node, "node");
    Objects.requireNonNull(underlayAddress, "underlayAddress");
    Objects.requireNonNull(block, "block");
  }

  public NodeBlockLease renewedAt(long millis) {
    return new NodeBlockLease(node, underlayAddress, block, epoch, millis);
  }
}

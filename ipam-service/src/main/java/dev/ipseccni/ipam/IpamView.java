package dev.ipseccni.ipam;

import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.NodeBlockLease;
import java.util.List;
import java.util.Optional;

/**
 * What the IPAM service of one node holds right now, for the HTTP API and tests.
 *
 * @param ready whether ADD can succeed (lease held, journal replayed)
 * @param reason why not, in words an operator can act on; empty when ready
 * @param lease the block lease this node holds
 * @param allocations the pod allocations, oldest first
 */
public record IpamView(String node, boolean ready, String reason, Optional<NodeBlockLease> lease,
                       List<Allocation> allocations) {
  public IpamView {
    allocations = List.copyOf(allocations);
  }
}

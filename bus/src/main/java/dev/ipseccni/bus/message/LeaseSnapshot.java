package dev.ipseccni.bus.message;

import java.util.List;

/**
 * The cluster's block leases as IPAM read them from the lease map, the answer to
 * {@link dev.ipseccni.bus.Addresses#LEASE_SNAPSHOT}.
 *
 * @param takenAtMillis wall-clock time of the read: a lease renewed later is newer than this snapshot
 */
public record LeaseSnapshot(List<NodeBlockLease> leases, long takenAtMillis) {
  public LeaseSnapshot {
    leases = List.copyOf(leases);
  }
}

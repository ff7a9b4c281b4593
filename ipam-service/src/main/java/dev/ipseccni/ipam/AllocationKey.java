package dev.ipseccni.ipam;

import java.util.Objects;

/** What an address is allocated to: one interface of one container on one network (the CNI key). */
public record AllocationKey(String network, String containerId, String ifName) {
  public AllocationKey {
    Objects.requireNonNull(network, "network");
    Objects.requireNonNull(containerId, "containerId");
    Objects.requireNonNull(ifName, "ifName");
  }

  @Override
  public String toString() {
    return network + "/" + containerId + "/" + ifName;
  }
}

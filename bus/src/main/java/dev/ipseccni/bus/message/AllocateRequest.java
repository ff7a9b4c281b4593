package dev.ipseccni.bus.message;

/**
 * Request for the pod address of (network, containerId, ifName); repeated requests get the same address.
 *
 * @param requestedAddress the one address the runtime asked for (CNI_ARGS {@code IP=}, the {@code ips}
 *     capability or {@code args.cni.ips}), bare, without a prefix length; empty when it asked for none and
 *     IPAM picks. Absent in the JSON of older senders, which reads as empty.
 */
public record AllocateRequest(String network, String containerId, String ifName, String requestedAddress) {

  public AllocateRequest {
    requestedAddress = requestedAddress == null ? "" : requestedAddress;
  }

  /** A request that leaves the choice of address to IPAM. */
  public AllocateRequest(String network, String containerId, String ifName) {
    this(network, containerId, ifName, "");
  }

  public boolean requestsAnAddress() {
    return !requestedAddress.isEmpty();
  }
}

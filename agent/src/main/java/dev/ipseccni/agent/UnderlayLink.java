package dev.ipseccni.agent;

import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.UnknownHostException;

/**
 * The network interface that holds the node's underlay address, and its MTU: the link every
 * ESP packet of this node leaves on.
 */
record UnderlayLink(String name, int mtu) {

  /** @throws IllegalStateException when no interface of this network namespace holds the address */
  static UnderlayLink holding(String underlayAddress) {
    try {
      NetworkInterface nic = NetworkInterface.getByInetAddress(InetAddress.getByName(underlayAddress));
      if (nic == null) {
        throw new IllegalStateException("no interface holds underlayAddress " + underlayAddress
            + ": cannot derive the pod MTU from the underlay link (set network.mtu, or fix underlayAddress)");
      }
      return new UnderlayLink(nic.getName(), nic.getMTU());
    } catch (SocketException | UnknownHostException e) {
      throw new IllegalStateException("cannot read the interface of underlayAddress " + underlayAddress + ": " + e, e);
    }
  }
}

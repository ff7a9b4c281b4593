package dev.ipseccni.firewall;

/**
 * How ESP is done on this node, which decides how the firewall recognises a protected packet.
 */
public enum Datapath {
  /** Kernel XFRM: a protected packet matches {@code -m policy --pol ipsec}. */
  KERNEL,
  /** strongSwan's userspace ESP: a protected packet is one routed through its TUN interface. */
  LIBIPSEC
}

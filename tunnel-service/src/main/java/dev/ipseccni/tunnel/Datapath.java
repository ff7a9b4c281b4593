package dev.ipseccni.tunnel;

/** Where ESP is done: the kernel's XFRM, or charon's userspace libipsec (kernels without ESP). */
public enum Datapath {
  KERNEL,
  /** kernel-libipsec: ESP in userspace over a TUN device, always UDP-encapsulated. */
  LIBIPSEC
}

package dev.ipseccni.tunnel.identity;

/** A node certificate, key or CA file that cannot serve as this node's IKE identity; the message says why. */
public final class IdentityException extends Exception {
  public IdentityException(String message) {
    super(message);
  }
}

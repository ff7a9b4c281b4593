package dev.ipseccni.tunnel.vici;

/** Bytes on the socket that are not a valid VICI packet (truncated, oversized, malformed). */
public class ViciProtocolException extends ViciException {
  public ViciProtocolException(String message) {
    super(message);
  }
}

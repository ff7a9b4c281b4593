package dev.ipseccni.tunnel.vici;

import java.io.IOException;

/** A VICI exchange failed: the socket, the framing, or charon refused the command. */
public class ViciException extends IOException {
  public ViciException(String message) {
    super(message);
  }

  public ViciException(String message, Throwable cause) {
    super(message, cause);
  }
}

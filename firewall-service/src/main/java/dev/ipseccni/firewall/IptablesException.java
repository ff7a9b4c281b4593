package dev.ipseccni.firewall;

/** An iptables command could not be run or failed; the message carries the command and its error output. */
public final class IptablesException extends Exception {
  public IptablesException(String message) {
    super(message);
  }

  public IptablesException(String message, Throwable cause) {
    super(message, cause);
  }
}

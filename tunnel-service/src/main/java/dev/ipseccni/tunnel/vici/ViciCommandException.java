package dev.ipseccni.tunnel.vici;

/** charon answered a command with {@code success = no}; {@link #errmsg()} is its reason. */
public class ViciCommandException extends ViciException {
  private final String command;
  private final String errmsg;

  public ViciCommandException(String command, String errmsg) {
    super("charon refused " + command + ": " + errmsg);
    this.command = command;
    this.errmsg = errmsg;
  }

  public String command() {
    return command;
  }

  public String errmsg() {
    return errmsg;
  }
}

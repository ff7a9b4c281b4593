package dev.ipseccni.tunnel.vici;

/** The eight VICI packet types; the named ones carry a command or event name. */
public enum ViciPacketType {
  CMD_REQUEST(0, true),
  CMD_RESPONSE(1, false),
  CMD_UNKNOWN(2, false),
  EVENT_REGISTER(3, true),
  EVENT_UNREGISTER(4, true),
  EVENT_CONFIRM(5, false),
  EVENT_UNKNOWN(6, false),
  EVENT(7, true);

  private final int code;
  private final boolean named;

  ViciPacketType(int code, boolean named) {
    this.code = code;
    this.named = named;
  }

  public int code() {
    return code;
  }

  public boolean named() {
    return named;
  }

  public static ViciPacketType of(int code) throws ViciProtocolException {
    if (code < 0 || code >= values().length) {
      throw new ViciProtocolException("unknown VICI packet type " + code);
    }
    return values()[code];
  }
}

package dev.ipseccni.tunnel.vici;

import java.util.Objects;

/**
 * One VICI packet.
 *
 * @param type packet type
 * @param name command or event name for named types, empty otherwise
 * @param message the body (empty for register/confirm packets)
 */
public record ViciPacket(ViciPacketType type, String name, ViciMessage message) {
  public ViciPacket {
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(message, "message");
    if (type.named() == name.isEmpty()) {
      throw new IllegalArgumentException(type + (type.named() ? " needs a name" : " carries no name"));
    }
  }

  public static ViciPacket request(String command, ViciMessage message) {
    return new ViciPacket(ViciPacketType.CMD_REQUEST, command, message);
  }
}

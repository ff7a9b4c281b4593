package dev.ipseccni.tunnel.vici;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;

/**
 * What charon (or anything on its socket) sends, decoded under arbitrary bytes: a packet, or
 * {@link ViciProtocolException} / {@link EOFException}, never another exception, a hang or a
 * huge allocation. In a plain build the inputs under {@code ViciCodecFuzzTestInputs/} are
 * replayed; {@code JAZZER_FUZZ=1} fuzzes (see the README). An input is the byte stream of
 * the socket: length-prefixed frames.
 */
class ViciCodecFuzzTest {

  @FuzzTest(maxDuration = "60s")
  void framesDecodeOrFailWithAProtocolError(byte[] stream) throws Exception {
    var channel = Channels.newChannel(new ByteArrayInputStream(stream));
    while (true) {
      ViciPacket packet;
      try {
        packet = ViciCodec.readFrame(channel);
      } catch (ViciProtocolException | EOFException expected) {
        return;
      }
      reencodes(packet);
    }
  }

  /** A decoded packet encodes to bytes that decode to the same packet (when its names still fit in 255 bytes). */
  private static void reencodes(ViciPacket packet) throws ViciProtocolException {
    ByteBuffer frame;
    try {
      frame = ViciCodec.encodeFrame(packet);
    } catch (IllegalArgumentException tooLongOnceReplaced) {
      // invalid UTF-8 in a name decodes to U+FFFD, three bytes each: such a name may no longer fit
      return;
    }
    frame.getInt();
    assertEquals(packet, ViciCodec.decodePacket(frame));
  }
}

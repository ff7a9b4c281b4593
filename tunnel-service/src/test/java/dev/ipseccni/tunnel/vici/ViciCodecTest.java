package dev.ipseccni.tunnel.vici;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The wire format, byte by byte, and how the decoder treats broken input. */
class ViciCodecTest {

  private static ReadableByteChannel channel(byte[] bytes) {
    return Channels.newChannel(new ByteArrayInputStream(bytes));
  }

  private static byte[] hex(String h) {
    return HexFormat.of().parseHex(h.replace(" ", ""));
  }

  @Test
  void encodesEveryElementAsTheSpecSays() {
    ViciMessage m = ViciMessage.builder()
        .put("k", "v")
        .section("s", ViciMessage.builder().put("a", "b").build())
        .list("l", List.of("x", "yz"))
        .build();
    byte[] expected = hex("03 01 6b 0001 76"            // KEY_VALUE k = v
        + "01 01 73  03 01 61 0001 62  02"              // SECTION_START s { a = b } SECTION_END
        + "04 01 6c  05 0001 78  05 0002 797a  06");   // LIST_START l [x, yz] LIST_END
    assertArrayEquals(expected, ViciCodec.encodeMessage(m));
  }

  @Test
  void framesANamedRequest() throws Exception {
    ByteBuffer frame = ViciCodec.encodeFrame(ViciPacket.request("version", ViciMessage.empty()));
    byte[] bytes = new byte[frame.remaining()];
    frame.get(bytes);
    assertArrayEquals(hex("00000009 00 07 76657273696f6e"), bytes);
  }

  @Test
  void roundTripsNestedMessages() throws Exception {
    ViciMessage m = ViciMessage.builder()
        .section("conn", ViciMessage.builder()
            .list("local_addrs", List.of("192.0.2.1"))
            .section("children", ViciMessage.builder()
                .section("c", ViciMessage.builder().list("local_ts", List.of("10.0.0.0/24")).build())
                .build())
            .build())
        .put("ünïcode", "välue")
        .build();
    ViciPacket p = new ViciPacket(ViciPacketType.EVENT, "ike-updown", m);
    ViciPacket back = ViciCodec.readFrame(channel(toBytes(ViciCodec.encodeFrame(p))));
    assertEquals(p, back);
  }

  @Test
  void hugeDeclaredLengthIsRejectedBeforeAllocating() {
    ViciProtocolException e = assertThrows(ViciProtocolException.class,
        () -> ViciCodec.readFrame(channel(hex("7fffffff 01"))));
    assertTrue(e.getMessage().contains("out of range"), e.getMessage());
    assertThrows(ViciProtocolException.class, () -> ViciCodec.readFrame(channel(hex("ffffffff"))));
    assertThrows(ViciProtocolException.class, () -> ViciCodec.readFrame(channel(hex("00080001"))));
    assertThrows(ViciProtocolException.class, () -> ViciCodec.readFrame(channel(hex("00000000"))));
  }

  @Test
  void truncatedFramesAreClearErrors() {
    assertTrue(assertThrows(ViciProtocolException.class, () -> ViciCodec.readFrame(channel(hex("0000"))))
        .getMessage().contains("header truncated"));
    assertTrue(assertThrows(ViciProtocolException.class, () -> ViciCodec.readFrame(channel(hex("00000010 01 03"))))
        .getMessage().contains("truncated"));
    assertThrows(EOFException.class, () -> ViciCodec.readFrame(channel(new byte[0])));
  }

  @Test
  void malformedMessagesAreClearErrors() {
    List<String> bad = List.of(
        "09",                    // unknown packet type
        "00",                    // named packet without a name
        "00 05 6162",            // name longer than the packet
        "01 07",                 // unknown element
        "01 03 01 6b 0005 7676", // value cut short
        "01 01 01 73",           // section never closed
        "01 02",                 // SECTION_END without section
        "01 04 01 6c 05 0001 78",// list never closed
        "01 05 0001 78",         // item outside a list
        "01 04 01 6c 03 01 6b 0001 76 06", // key inside a list
        "01 06",                 // LIST_END without list
        "01 03 00 0000");        // empty key
    for (String h : bad) {
      assertThrows(ViciProtocolException.class, () -> ViciCodec.decodePacket(ByteBuffer.wrap(hex(h))), h);
    }
  }

  private static ByteBuffer nestedSections(int depth) {
    ByteBuffer b = ByteBuffer.allocate(1 + depth * 3 + depth);
    b.put((byte) 1);
    for (int i = 0; i < depth; i++) {
      b.put((byte) 1).put((byte) 1).put((byte) 's');
    }
    for (int i = 0; i < depth; i++) {
      b.put((byte) 2);
    }
    return b.flip();
  }

  @Test
  void deepNestingIsAProtocolErrorNotAStackOverflow() throws Exception {
    // Decoding alone never recursed; equals, toString and encoding of the decoded message did.
    assertThrows(ViciProtocolException.class, () -> ViciCodec.decodePacket(nestedSections(100_000)));
    ViciPacket deepest = ViciCodec.decodePacket(nestedSections(ViciCodec.MAX_DEPTH));
    assertTrue(deepest.message().section("s").isPresent());
    assertEquals(deepest.message(), ViciCodec.decodeMessage(ByteBuffer.wrap(ViciCodec.encodeMessage(deepest.message()))));
  }

  @Test
  void randomGarbageNeverEscapesAsAnythingButAProtocolError() {
    java.util.Random random = new java.util.Random(42);
    for (int i = 0; i < 20_000; i++) {
      byte[] body = new byte[random.nextInt(64)];
      random.nextBytes(body);
      try {
        ViciCodec.decodePacket(ByteBuffer.wrap(body));
      } catch (ViciProtocolException expected) {
        // the only allowed failure
      }
    }
  }

  private static byte[] toBytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.get(out);
    return out;
  }
}

package dev.ipseccni.tunnel.vici;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;

/**
 * VICI wire format. A frame is a 4-byte big-endian length, then the packet: one type
 * byte, for named types a 1-byte name length and the name, then the message as a
 * sequence of elements:
 *
 * <pre>
 *   SECTION_START 1  name8        SECTION_END 2
 *   KEY_VALUE     3  name8 value16
 *   LIST_START    4  name8        LIST_ITEM 5 value16    LIST_END 6
 * </pre>
 *
 * (name8 = 1-byte length + bytes, value16 = 2-byte big-endian length + bytes.)
 * Decoding is iterative, bounds-checked and depth-limited: a hostile or broken peer gets a
 * {@link ViciProtocolException}, never a hang, a stack overflow (here or later, in code that
 * walks the message) or a huge allocation.
 */
public final class ViciCodec {
  /** Largest frame charon sends or accepts (VICI_MESSAGE_SIZE_MAX in libvici). */
  public static final int MAX_FRAME = 512 * 1024;
  /**
   * Deepest section nesting we accept; charon's deepest (list-sas: sa, child-sas, child) is
   * a handful. Decoding is iterative, but equals, toString and encoding of a message recurse.
   */
  public static final int MAX_DEPTH = 64;

  static final int SECTION_START = 1;
  static final int SECTION_END = 2;
  static final int KEY_VALUE = 3;
  static final int LIST_START = 4;
  static final int LIST_ITEM = 5;
  static final int LIST_END = 6;

  private ViciCodec() {}

  /** The whole frame, length prefix included. */
  public static ByteBuffer encodeFrame(ViciPacket packet) throws ViciProtocolException {
    ByteBuffer body = encodePacket(packet);
    if (body.remaining() > MAX_FRAME) {
      throw new ViciProtocolException("VICI packet of " + body.remaining() + " bytes exceeds " + MAX_FRAME);
    }
    ByteBuffer frame = ByteBuffer.allocate(4 + body.remaining());
    frame.putInt(body.remaining()).put(body).flip();
    return frame;
  }

  static ByteBuffer encodePacket(ViciPacket packet) {
    Output out = new Output();
    out.u8(packet.type().code());
    if (packet.type().named()) {
      out.name8(packet.name());
    }
    encodeMessage(packet.message(), out);
    return out.toBuffer();
  }

  public static byte[] encodeMessage(ViciMessage message) {
    Output out = new Output();
    encodeMessage(message, out);
    ByteBuffer b = out.toBuffer();
    byte[] bytes = new byte[b.remaining()];
    b.get(bytes);
    return bytes;
  }

  private static void encodeMessage(ViciMessage message, Output out) {
    for (Map.Entry<String, Object> e : message.entries().entrySet()) {
      Object v = e.getValue();
      if (v instanceof String s) {
        out.u8(KEY_VALUE);
        out.name8(e.getKey());
        out.value16(s);
      } else if (v instanceof ViciMessage section) {
        out.u8(SECTION_START);
        out.name8(e.getKey());
        encodeMessage(section, out);
        out.u8(SECTION_END);
      } else if (v instanceof List<?> items) {
        out.u8(LIST_START);
        out.name8(e.getKey());
        for (Object item : items) {
          out.u8(LIST_ITEM);
          out.value16((String) item);
        }
        out.u8(LIST_END);
      }
    }
  }

  /**
   * Reads one frame from a blocking channel.
   *
   * @throws EOFException when the peer closed the socket cleanly between frames
   * @throws ViciProtocolException for a bad length, a frame cut short, or a malformed packet
   */
  public static ViciPacket readFrame(ReadableByteChannel channel) throws IOException {
    ByteBuffer header = ByteBuffer.allocate(4);
    if (!readFully(channel, header)) {
      if (header.position() == 0) {
        throw new EOFException("VICI socket closed");
      }
      throw new ViciProtocolException("VICI frame header truncated after " + header.position() + " bytes");
    }
    int length = header.flip().getInt();
    if (length < 1 || length > MAX_FRAME) {
      throw new ViciProtocolException("VICI frame length " + Integer.toUnsignedString(length)
          + " out of range 1.." + MAX_FRAME);
    }
    ByteBuffer body = ByteBuffer.allocate(length);
    if (!readFully(channel, body)) {
      throw new ViciProtocolException("VICI frame truncated: " + body.position() + " of " + length + " bytes");
    }
    return decodePacket(body.flip());
  }

  private static boolean readFully(ReadableByteChannel channel, ByteBuffer into) throws IOException {
    while (into.hasRemaining()) {
      if (channel.read(into) < 0) {
        return false;
      }
    }
    return true;
  }

  /** Decodes a packet (the bytes after the length prefix). */
  public static ViciPacket decodePacket(ByteBuffer in) throws ViciProtocolException {
    ViciPacketType type = ViciPacketType.of(u8(in, "packet type"));
    String name = type.named() ? name8(in, "packet name") : "";
    if (type.named() && name.isEmpty()) {
      throw new ViciProtocolException(type + " packet without a name");
    }
    return new ViciPacket(type, name, decodeMessage(in));
  }

  /** Decodes message elements until the buffer ends; sections and lists must be balanced. */
  public static ViciMessage decodeMessage(ByteBuffer in) throws ViciProtocolException {
    Deque<ViciMessage.Builder> open = new ArrayDeque<>();
    Deque<String> openNames = new ArrayDeque<>();
    ViciMessage.Builder current = ViciMessage.builder();
    String listName = null;
    List<String> listItems = null;
    while (in.hasRemaining()) {
      int element = u8(in, "element type");
      if (listItems != null && element != LIST_ITEM && element != LIST_END) {
        throw new ViciProtocolException("element " + element + " inside list '" + listName + "'");
      }
      switch (element) {
        case SECTION_START -> {
          String name = name8(in, "section name");
          if (open.size() >= MAX_DEPTH) {
            throw new ViciProtocolException("VICI sections nested deeper than " + MAX_DEPTH + " levels");
          }
          open.push(current);
          openNames.push(name);
          current = ViciMessage.builder();
        }
        case SECTION_END -> {
          if (open.isEmpty()) {
            throw new ViciProtocolException("SECTION_END without an open section");
          }
          ViciMessage section = current.build();
          current = open.pop();
          current.section(openNames.pop(), section);
        }
        case KEY_VALUE -> {
          String key = name8(in, "key");
          current.put(key, value16(in, "value of " + key));
        }
        case LIST_START -> {
          listName = name8(in, "list name");
          listItems = new ArrayList<>();
        }
        case LIST_ITEM -> {
          if (listItems == null) {
            throw new ViciProtocolException("LIST_ITEM outside a list");
          }
          listItems.add(value16(in, "item of " + listName));
        }
        case LIST_END -> {
          if (listItems == null) {
            throw new ViciProtocolException("LIST_END without an open list");
          }
          current.list(listName, listItems);
          listName = null;
          listItems = null;
        }
        default -> throw new ViciProtocolException("unknown VICI element type " + element);
      }
    }
    if (listItems != null) {
      throw new ViciProtocolException("message ends inside list '" + listName + "'");
    }
    if (!open.isEmpty()) {
      throw new ViciProtocolException("message ends inside section '" + openNames.peek() + "'");
    }
    return current.build();
  }

  private static int u8(ByteBuffer in, String what) throws ViciProtocolException {
    need(in, 1, what);
    return in.get() & 0xff;
  }

  private static String name8(ByteBuffer in, String what) throws ViciProtocolException {
    int len = u8(in, what);
    if (len == 0) {
      throw new ViciProtocolException("empty " + what);
    }
    return string(in, len, what);
  }

  private static String value16(ByteBuffer in, String what) throws ViciProtocolException {
    need(in, 2, what);
    return string(in, in.getShort() & 0xffff, what);
  }

  private static String string(ByteBuffer in, int len, String what) throws ViciProtocolException {
    need(in, len, what);
    byte[] bytes = new byte[len];
    in.get(bytes);
    return new String(bytes, StandardCharsets.UTF_8);
  }

  private static void need(ByteBuffer in, int n, String what) throws ViciProtocolException {
    if (in.remaining() < n) {
      throw new ViciProtocolException("VICI message truncated in " + what + ": need " + n + " bytes, have "
          + in.remaining());
    }
  }

  /** A growable output buffer with the three length-prefixed forms. */
  private static final class Output {
    private ByteBuffer buf = ByteBuffer.allocate(256);

    void u8(int v) {
      ensure(1);
      buf.put((byte) v);
    }

    void name8(String s) {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      if (b.length == 0 || b.length > 255) {
        throw new IllegalArgumentException("VICI name must be 1..255 bytes: '" + s + "'");
      }
      ensure(1 + b.length);
      buf.put((byte) b.length).put(b);
    }

    void value16(String s) {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      if (b.length > 0xffff) {
        throw new IllegalArgumentException("VICI value longer than 65535 bytes");
      }
      ensure(2 + b.length);
      buf.putShort((short) b.length).put(b);
    }

    private void ensure(int n) {
      if (buf.remaining() < n) {
        ByteBuffer bigger = ByteBuffer.allocate(Math.max(buf.capacity() * 2, buf.position() + n));
        bigger.put(buf.flip());
        buf = bigger;
      }
    }

    ByteBuffer toBuffer() {
      return buf.duplicate().flip();
    }
  }
}

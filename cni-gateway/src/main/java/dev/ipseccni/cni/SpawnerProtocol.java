package dev.ipseccni.cni;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The framing between the agent and {@code ipsec-cni-spawner}, the resident process that
 * runs commands for it ({@link ProcessSpawner}): the one definition. The spawner's
 * {@code spawner.h} mirrors these constants, and a test holds the two equal.
 *
 * <pre>
 * every frame    u32 length of the rest, u8 type, u64 id, then the type's body
 *                integers big-endian; "bytes" = u32 length, then that many bytes
 *
 * agent → spawner (its stdin)
 *   RUN      1   u32 argc, argc × bytes; u32 envc, envc × bytes ("NAME=value"); bytes stdin
 *                the child gets exactly this environment, in a process group of its own
 *   KILL     2   (empty): SIGKILL to the process group of running request id; no answer of
 *                its own, the RUN is answered when the child has died
 *
 * spawner → agent (its stdout)
 *   READY    16  i32 VERSION; once, at start, id 0
 *   EXITED   17  i32 exit code, bytes stdout, bytes stderr
 *   SIGNALED 18  i32 signal number, bytes stdout, bytes stderr
 *   FAILED   19  i32 errno, bytes what failed (e.g. "posix_spawnp: No such file or directory")
 * </pre>
 *
 * A RUN is answered once the child has exited and its stdout and stderr reached EOF, or a
 * quarter second after it exited when something it started keeps them open. Each of
 * stdout and stderr is cut at {@link #MAX_OUTPUT_BYTES}; the rest is read and dropped.
 */
final class SpawnerProtocol {
  private SpawnerProtocol() {}

  static final int VERSION = 1;
  static final int RUN = 1;
  static final int KILL = 2;
  static final int READY = 16;
  static final int EXITED = 17;
  static final int SIGNALED = 18;
  static final int FAILED = 19;
  /** Largest request frame the spawner reads; a larger one is a protocol error and ends it. */
  static final int MAX_REQUEST_BYTES = 16 * 1024 * 1024;
  static final int MAX_OUTPUT_BYTES = 1024 * 1024;

  /** An answer of the spawner: type, the id it answers, the type's number, and its byte fields. */
  record Answer(int type, long id, int value, List<byte[]> fields) {
    String text(int field) {
      return new String(fields.get(field), StandardCharsets.UTF_8);
    }
  }

  /** The RUN frame; every string must be free of NUL, which {@link ProcessSpawner} checks before. */
  static byte[] run(long id, List<String> argv, List<String> env, byte[] stdin) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(256 + stdin.length);
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeInt(0); // the length, filled in below
      out.writeByte(RUN);
      out.writeLong(id);
      strings(out, argv);
      strings(out, env);
      out.writeInt(stdin.length);
      out.write(stdin);
    } catch (IOException e) {
      throw new UncheckedIOException(e); // a byte array does not fail
    }
    byte[] frame = bytes.toByteArray();
    int length = frame.length - 4;
    if (length > MAX_REQUEST_BYTES) {
      throw new IllegalArgumentException("request of " + length + " bytes exceeds the spawner's "
          + MAX_REQUEST_BYTES);
    }
    frame[0] = (byte) (length >>> 24);
    frame[1] = (byte) (length >>> 16);
    frame[2] = (byte) (length >>> 8);
    frame[3] = (byte) length;
    return frame;
  }

  static byte[] kill(long id) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(13);
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeInt(9);
      out.writeByte(KILL);
      out.writeLong(id);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  private static void strings(DataOutputStream out, List<String> strings) throws IOException {
    out.writeInt(strings.size());
    for (String s : strings) {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      out.writeInt(b.length);
      out.write(b);
    }
  }

  /** The next answer; EOFException when the spawner has closed its stdout (it exited). */
  static Answer read(DataInputStream in) throws IOException {
    int length = in.readInt();
    if (length < 13 || length > 2 * MAX_OUTPUT_BYTES + 64) {
      throw new IOException("spawner frame of " + length + " bytes");
    }
    int type = in.readUnsignedByte();
    long id = in.readLong();
    int value = in.readInt();
    int left = length - 13;
    List<byte[]> fields = new java.util.ArrayList<>(2);
    while (left > 0) {
      int size = in.readInt();
      if (size < 0 || size > left - 4) {
        throw new IOException("spawner field of " + size + " bytes in a frame with " + (left - 4) + " left");
      }
      byte[] field = new byte[size];
      in.readFully(field);
      fields.add(field);
      left -= 4 + size;
    }
    int expected = switch (type) {
      case READY -> 0;
      case EXITED, SIGNALED -> 2;
      case FAILED -> 1;
      default -> throw new IOException("spawner frame of unknown type " + type);
    };
    if (fields.size() != expected) {
      throw new IOException("spawner frame of type " + type + " with " + fields.size() + " fields");
    }
    return new Answer(type, id, value, List.copyOf(fields));
  }
}

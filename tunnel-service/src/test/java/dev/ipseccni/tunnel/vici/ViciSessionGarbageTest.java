package dev.ipseccni.tunnel.vici;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A session whose peer answers with broken bytes (beside the real-charon tests): the command
 * fails with a clear error at once, no hang until the timeout, and the session closes.
 */
class ViciSessionGarbageTest {
  @TempDir
  Path dir;

  private ViciException commandAgainst(String replyHex) throws Exception {
    Path socket = dir.resolve("garbage-" + replyHex.hashCode() + ".vici");
    try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      server.bind(UnixDomainSocketAddress.of(socket));
      CompletableFuture<Void> peer = CompletableFuture.runAsync(() -> {
        try (SocketChannel c = server.accept()) {
          ByteBuffer request = ByteBuffer.allocate(64);
          c.read(request);
          c.write(ByteBuffer.wrap(HexFormat.of().parseHex(replyHex.replace(" ", ""))));
          // Keep the socket open: the client must fail on the bytes, not on EOF.
          c.read(ByteBuffer.allocate(1));
        } catch (java.io.IOException ignored) {
          // client closed
        }
      });
      // a long command timeout: a hang would show as this test not finishing quickly
      try (ViciSession s = ViciSession.connect(socket, Duration.ofMinutes(5))) {
        ViciException e = assertThrows(ViciException.class, s::version);
        assertFalse(s.isOpen());
        return e;
      } finally {
        peer.join();
        Files.deleteIfExists(socket);
      }
    }
  }

  @Test
  void hugeDeclaredLengthFailsTheCommand() throws Exception {
    ViciException e = commandAgainst("40000000 01");
    assertTrue(e.getMessage().contains("out of range"), e.getMessage());
  }

  @Test
  void garbageElementFailsTheCommand() throws Exception {
    ViciException e = commandAgainst("00000003 01 09 09");
    assertTrue(e.getMessage().contains("unknown VICI element"), e.getMessage());
  }

  @Test
  void requestPacketFromThePeerIsRejected() throws Exception {
    ViciException e = commandAgainst("00000003 00 01 78");
    assertTrue(e.getMessage().contains("CMD_REQUEST"), e.getMessage());
  }
}

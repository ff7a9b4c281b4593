package dev.ipseccni.cni.plugin;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** One HTTP/1.1 exchange with the gateway over its Unix socket, as {@link PluginProtocol} describes. */
public final class GatewayClient {
  private GatewayClient() {}

  /**
   * Sends the call and returns the gateway's answer.
   *
   * @throws IOException when the socket cannot be reached or the connection breaks
   * @throws IllegalStateException when the gateway answered something that is not a CNI answer
   */
  public static PluginReply exchange(Path socket, PluginCall call) throws IOException {
    byte[] body = call.toJson().getBytes(StandardCharsets.UTF_8);
    String head = PluginProtocol.METHOD + " " + PluginProtocol.PATH + " HTTP/1.1\r\n"
        + "Host: ipsec-cni\r\n"
        + "Content-Type: " + PluginProtocol.CONTENT_TYPE + "\r\n"
        + "Content-Length: " + body.length + "\r\n"
        + "Connection: close\r\n\r\n";
    try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      channel.connect(UnixDomainSocketAddress.of(socket));
      ByteBuffer out = ByteBuffer.allocate(head.length() + body.length);
      out.put(head.getBytes(StandardCharsets.US_ASCII)).put(body).flip();
      while (out.hasRemaining()) {
        channel.write(out);
      }
      ByteArrayOutputStream in = new ByteArrayOutputStream(4096);
      ByteBuffer buf = ByteBuffer.allocate(16384);
      // Stop at the end of the body, not at the close: an arrived reply is never held up by an open connection.
      while (channel.read(buf) >= 0) {
        in.write(buf.array(), 0, buf.position());
        buf.clear();
        if (complete(in.toByteArray())) {
          break;
        }
      }
      return parse(in.toByteArray());
    }
  }

  static PluginReply parse(byte[] response) {
    String text = new String(response, StandardCharsets.UTF_8);
    int end = text.indexOf("\r\n\r\n");
    if (end < 0) {
      throw new IllegalStateException("truncated reply from the agent");
    }
    String[] lines = text.substring(0, end).split("\r\n");
    String[] status = lines[0].split(" ", 3);
    if (status.length < 2 || !status[1].equals("200")) {
      throw new IllegalStateException("agent answered " + lines[0]);
    }
    Integer exitCode = null;
    int contentLength = -1;
    for (int i = 1; i < lines.length; i++) {
      int colon = lines[i].indexOf(':');
      if (colon < 0) {
        continue;
      }
      String name = lines[i].substring(0, colon).trim();
      String value = lines[i].substring(colon + 1).trim();
      if (name.equalsIgnoreCase(PluginProtocol.EXIT_CODE_HEADER)) {
        exitCode = Integer.valueOf(value);
      } else if (name.equalsIgnoreCase("Content-Length")) {
        contentLength = Integer.parseInt(value);
      }
    }
    if (exitCode == null) {
      throw new IllegalStateException("agent reply has no " + PluginProtocol.EXIT_CODE_HEADER + " header");
    }
    byte[] rest = java.util.Arrays.copyOfRange(response, headerBytes(response) , response.length);
    if (contentLength >= 0 && rest.length < contentLength) {
      throw new IllegalStateException("agent reply cut short");
    }
    int length = contentLength >= 0 ? contentLength : rest.length;
    return new PluginReply(exitCode, new String(rest, 0, length, StandardCharsets.UTF_8));
  }

  static boolean complete(byte[] response) {
    int body = headerBytes(response);
    if (body == response.length && !new String(response, StandardCharsets.US_ASCII).endsWith("\r\n\r\n")) {
      return false;
    }
    for (String line : new String(response, 0, body, StandardCharsets.US_ASCII).split("\r\n")) {
      int colon = line.indexOf(':');
      if (colon > 0 && line.substring(0, colon).trim().equalsIgnoreCase("Content-Length")) {
        return response.length - body >= Integer.parseInt(line.substring(colon + 1).trim());
      }
    }
    return false;
  }

  private static int headerBytes(byte[] response) {
    for (int i = 0; i + 3 < response.length; i++) {
      if (response[i] == '\r' && response[i + 1] == '\n' && response[i + 2] == '\r' && response[i + 3] == '\n') {
        return i + 4;
      }
    }
    return response.length;
  }
}

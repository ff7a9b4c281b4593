package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.cni.plugin.PluginCall;
import dev.ipseccni.cni.plugin.PluginProtocol;
import java.io.ByteArrayOutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The C client looks in the pod's namespace for CNI_IFNAME on ADD and tells the agent
 * (so the agent need not exec a helper to look): what it sends, recorded by a bare
 * socket server standing in for the agent. The gateway's side of it is proven with the
 * real gateway in PluginAgainstGatewayTest (an ADD of an existing interface fails and
 * leaves the pod alone, with either client).
 */
class InterfaceProbeTest {
  @TempDir
  Path dir;
  private NetnsLab lab;
  private ServerSocketChannel server;
  private Path socket;

  @BeforeEach
  void recorder() throws Exception {
    assertTrue("root".equals(System.getProperty("user.name")), "needs root (network namespaces, setns)");
    lab = new NetnsLab();
    socket = dir.resolve("cni.sock");
    server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    server.bind(UnixDomainSocketAddress.of(socket));
  }

  @AfterEach
  void close() throws Exception {
    if (server != null) {
      server.close();
    }
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void addSaysWhetherThePodAlreadyHasTheInterface() throws Exception {
    String netns = lab.pod("probe");
    NetnsLab.must("ip", "-n", NetnsLab.PREFIX + "probe", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer");
    assertEquals(Boolean.TRUE, sent("ADD", netns, "eth0").interfacePresent());
    assertEquals(Boolean.FALSE, sent("ADD", netns, "eth1").interfacePresent());
  }

  @Test
  void otherCommandsAndUnknownNamespacesAreLeftToTheAgent() throws Exception {
    String netns = lab.pod("probe");
    assertNull(sent("ADD", "/run/netns/" + NetnsLab.PREFIX + "no-such-pod", "eth0").interfacePresent(),
        "no such namespace: the agent says why");
    assertNull(sent("ADD", netns, "a-name-longer-than-15").interfacePresent(), "the agent refuses the name");
    assertNull(sent("DEL", netns, "eth0").interfacePresent());
    assertNull(sent("CHECK", netns, "eth0").interfacePresent());
  }

  /** Runs the C client for one command and returns the request it sent. */
  private PluginCall sent(String command, String netns, String ifName) throws Exception {
    CompletableFuture<String> request = CompletableFuture.supplyAsync(this::answerOne);
    Map<String, String> env = Map.of("CNI_COMMAND", command, "CNI_CONTAINERID", "probe-1", "CNI_NETNS", netns,
        "CNI_IFNAME", ifName, "CNI_PATH", "/usr/lib/cni", PluginProtocol.SOCKET_ENV, socket.toString());
    PluginClient.Run run = PluginClient.C.run(env, "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"ipsec-cni\"}");
    assertEquals(0, run.exitCode(), run.stdout());
    String http = request.get(30, TimeUnit.SECONDS);
    return PluginCall.fromJson(http.substring(http.indexOf("\r\n\r\n") + 4));
  }

  /** Accepts one connection, reads the request whole, answers an empty success. */
  private String answerOne() {
    try (SocketChannel c = server.accept()) {
      ByteArrayOutputStream in = new ByteArrayOutputStream();
      ByteBuffer buf = ByteBuffer.allocate(8192);
      int contentLength = -1;
      int headerEnd = -1;
      while (headerEnd < 0 || in.size() < headerEnd + contentLength) {
        buf.clear();
        if (c.read(buf) < 0) {
          break;
        }
        in.write(buf.array(), 0, buf.position());
        String text = in.toString(StandardCharsets.UTF_8);
        if (headerEnd < 0 && text.contains("\r\n\r\n")) {
          headerEnd = text.indexOf("\r\n\r\n") + 4;
          java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?i)content-length: *(\\d+)").matcher(text);
          contentLength = m.find() ? Integer.parseInt(m.group(1)) : 0;
        }
      }
      byte[] body = "{}".getBytes(StandardCharsets.UTF_8);
      c.write(ByteBuffer.wrap(("HTTP/1.1 200 OK\r\n" + PluginProtocol.EXIT_CODE_HEADER + ": 0\r\nContent-Length: "
          + body.length + "\r\nConnection: close\r\n\r\n{}").getBytes(StandardCharsets.UTF_8)));
      return in.toString(StandardCharsets.UTF_8);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}

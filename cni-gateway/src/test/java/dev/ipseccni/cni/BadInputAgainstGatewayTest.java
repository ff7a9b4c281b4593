package dev.ipseccni.cni;

import static dev.ipseccni.cni.PluginClient.env;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.cni.plugin.GatewayClient;
import dev.ipseccni.cni.plugin.PendingDeletes;
import dev.ipseccni.cni.plugin.PluginCall;
import dev.ipseccni.cni.plugin.PluginProtocol;
import dev.ipseccni.cni.plugin.PluginReply;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What a broken or hostile runtime can send the real gateway verticle over its Unix socket:
 * each call gets a CNI error with the right code (or, for a body that is not a call at all,
 * an HTTP 400), and the gateway keeps serving afterwards. Every input here is refused before
 * the datapath, so no network namespace is needed.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BadInputAgainstGatewayTest {
  static final String NODE = "bad-input-node";

  Vertx vertx;
  Path dir;
  Path socket;

  @BeforeAll
  void startGateway() throws Exception {
    dir = Files.createTempDirectory("cg-bad");
    socket = dir.resolve("run").resolve("cni.sock");
    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
    await(new InTestIpam().register(vertx, NODE));
    CniGatewaySettings settings = new CniGatewaySettings(NODE, socket, "ipsec-cni", "cni0", 1400,
        PluginProtocol.pendingDelDir(socket), PluginProtocol.SUPPORTED_VERSIONS, List.of(Addresses.IPAM), List.of(),
        Duration.ofSeconds(5), Duration.ofHours(1));
    await(vertx.deployVerticle(new CniGateway(settings, new EventPublisher(vertx.eventBus(), NODE, 1))));
  }

  @AfterAll
  void stop() throws IOException {
    if (vertx != null) {
      await(vertx.close());
    }
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    }
  }

  /** After every bad input, a good call is still answered. */
  @AfterEach
  void gatewayStillServes() throws IOException {
    PluginReply status = GatewayClient.exchange(socket, new PluginCall(env("CNI_COMMAND", "STATUS"), conf()));
    assertEquals(0, status.exitCode(), status.stdout());
  }

  static <T> T await(Future<T> future) {
    try {
      return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("future failed: " + e, e);
    }
  }

  static String conf() {
    return "{\"cniVersion\":\"1.0.0\",\"name\":\"ipsec-cni\",\"type\":\"ipsec-cni\"}";
  }

  static Map<String, String> del(String containerId, String ifName) {
    return env("CNI_COMMAND", "DEL", "CNI_CONTAINERID", containerId, "CNI_IFNAME", ifName, "CNI_NETNS", "/run/netns/x");
  }

  record Answer(int httpStatus, int exitCode, String body) {
    JsonObject error() {
      return new JsonObject(body);
    }
  }

  /** One request with a body of raw bytes, so the test can send what GatewayClient never would. */
  Answer post(byte[] body) throws IOException {
    String head = "POST /cni HTTP/1.1\r\nHost: ipsec-cni\r\nContent-Type: application/json\r\nContent-Length: "
        + body.length + "\r\nConnection: close\r\n\r\n";
    try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      channel.connect(UnixDomainSocketAddress.of(socket));
      ByteBuffer out = ByteBuffer.allocate(head.length() + body.length);
      out.put(head.getBytes(StandardCharsets.US_ASCII)).put(body).flip();
      while (out.hasRemaining()) {
        channel.write(out);
      }
      ByteArrayOutputStream in = new ByteArrayOutputStream();
      ByteBuffer buf = ByteBuffer.allocate(16384);
      while (channel.read(buf) >= 0) {
        in.write(buf.array(), 0, buf.position());
        buf.clear();
      }
      String reply = in.toString(StandardCharsets.UTF_8);
      int status = Integer.parseInt(reply.split(" ", 3)[1]);
      int exit = -1;
      for (String line : reply.substring(0, reply.indexOf("\r\n\r\n")).split("\r\n")) {
        if (line.toLowerCase().startsWith(PluginProtocol.EXIT_CODE_HEADER.toLowerCase() + ":")) {
          exit = Integer.parseInt(line.substring(line.indexOf(':') + 1).trim());
        }
      }
      return new Answer(status, exit, reply.substring(reply.indexOf("\r\n\r\n") + 4));
    }
  }

  PluginReply call(Map<String, String> env, String stdin) throws IOException {
    return GatewayClient.exchange(socket, new PluginCall(env, stdin));
  }

  static int code(PluginReply reply) {
    assertTrue(reply.exitCode() != 0, reply.stdout());
    int code = new JsonObject(reply.stdout()).getInteger("code");
    assertEquals(code, reply.exitCode(), reply.stdout());
    return code;
  }

  // ---- size and shape of stdin ----

  @Test
  void tenMebibytesOfStdinIsRefusedWithoutBeingBuffered() throws IOException {
    String huge = "{\"cniVersion\":\"1.0.0\",\"name\":\"ipsec-cni\",\"pad\":\"" + "x".repeat(10 * 1024 * 1024) + "\"}";
    PluginReply reply = call(del("ctr-huge", "eth0"), huge);
    assertEquals(CniError.INVALID_NETWORK_CONFIG, code(reply));
    assertTrue(reply.stdout().contains("larger than the " + PluginProtocol.MAX_REQUEST_BYTES), reply.stdout());
  }

  @Test
  void stdinJustUnderTheLimitIsStillRead() throws IOException {
    String big = "{\"cniVersion\":\"1.0.0\",\"name\":\"ipsec-cni\",\"pad\":\"" + "x".repeat(900 * 1024) + "\"}";
    PluginReply reply = call(env("CNI_COMMAND", "STATUS"), big);
    assertEquals(0, reply.exitCode(), reply.stdout());
  }

  @Test
  void stdinNested100kLevelsDeepIsADecodeError() throws IOException {
    String nested = "[".repeat(100_000) + "]".repeat(100_000);
    assertEquals(CniError.DECODE_FAILURE, code(call(del("ctr-nested", "eth0"), nested)));
    String nestedObject = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"x\":" + "{\"a\":".repeat(100_000) + "1"
        + "}".repeat(100_001);
    assertEquals(CniError.DECODE_FAILURE, code(call(del("ctr-nested", "eth0"), nestedObject)));
  }

  @Test
  void requestBodyNested100kLevelsDeepIsRefusedNotAStackOverflow() throws IOException {
    byte[] body = ("{\"env\":" + "[".repeat(100_000) + "]".repeat(100_000) + "}").getBytes(StandardCharsets.UTF_8);
    Answer answer = post(body);
    assertEquals(400, answer.httpStatus(), answer.body());
    assertTrue(answer.body().contains("nested deeper"), answer.body());
  }

  @Test
  void stdinThatIsNotUtf8IsADecodeError() throws IOException {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.writeBytes("{\"env\":{\"CNI_COMMAND\":\"DEL\",\"CNI_CONTAINERID\":\"c1\",\"CNI_IFNAME\":\"eth0\"},\"stdin\":\""
        .getBytes(StandardCharsets.UTF_8));
    body.writeBytes(new byte[] {(byte) 0xff, (byte) 0xfe, (byte) 0xc0, (byte) 0xaf, '{'});
    body.writeBytes("\"}".getBytes(StandardCharsets.UTF_8));
    Answer answer = post(body.toByteArray());
    assertEquals(200, answer.httpStatus(), answer.body());
    assertEquals(CniError.DECODE_FAILURE, answer.error().getInteger("code"), answer.body());
    assertEquals(CniError.DECODE_FAILURE, answer.exitCode());
  }

  @Test
  void networkNameThatIsNotUtf8IsAnInvalidConfig() throws IOException {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.writeBytes(("{\"env\":{\"CNI_COMMAND\":\"DEL\",\"CNI_CONTAINERID\":\"c1\",\"CNI_IFNAME\":\"eth0\"},"
        + "\"stdin\":\"{\\\"cniVersion\\\":\\\"1.0.0\\\",\\\"name\\\":\\\"").getBytes(StandardCharsets.UTF_8));
    body.writeBytes(new byte[] {'n', (byte) 0xff, (byte) 0xc0});
    body.writeBytes("\\\"}\"}".getBytes(StandardCharsets.UTF_8));
    Answer answer = post(body.toByteArray());
    assertEquals(CniError.INVALID_NETWORK_CONFIG, answer.error().getInteger("code"), answer.body());
  }

  // ---- names from the runtime ----

  @ParameterizedTest
  @ValueSource(strings = {"ctr\u0000x", "ctr\nx", "ctr\u001b[2Jx", "ctr\u007f", "ctr\u0085x", "\u00ffctr"})
  void controlCharactersInTheContainerIdAreAnInvalidEnvironment(String containerId) throws IOException {
    PluginReply reply = call(del(containerId, "eth0"), conf());
    assertEquals(CniError.INVALID_ENVIRONMENT, code(reply));
    assertTrue(reply.stdout().chars().noneMatch(c -> c < 0x20 && c != '\n'), "raw control character echoed: "
        + reply.stdout());
  }

  @ParameterizedTest
  @ValueSource(strings = {"eth\u00000", "eth\t0", "eth\u00010", "eth\u007f", "eth\u0085", "ethééééééé"})
  void controlCharactersInTheInterfaceNameAreAnInvalidEnvironment(String ifName) throws IOException {
    assertEquals(CniError.INVALID_ENVIRONMENT, code(call(del("ctr-1", ifName), conf())));
  }

  @ParameterizedTest
  @ValueSource(strings = {"../../etc", "..", ".", "/etc/passwd", "a/../../b", ".hidden"})
  void pathsAsContainerIdAreRefused(String containerId) throws IOException {
    assertEquals(CniError.INVALID_ENVIRONMENT, code(call(del(containerId, "eth0"), conf())));
  }

  @ParameterizedTest
  @ValueSource(strings = {"../x", "..", ".", "a/b"})
  void pathsAsInterfaceNameAreRefused(String ifName) throws IOException {
    assertEquals(CniError.INVALID_ENVIRONMENT, code(call(del("ctr-1", ifName), conf())));
  }

  @Test
  void aPendingDelWithTraversalInItsNamesStaysInItsDirectory() throws IOException {
    Path pending = dir.resolve("pending-traversal");
    Path written = PendingDeletes.record(pending, new PluginCall(del("../../etc", "../../../x"), conf()));
    assertEquals(pending, written.getParent());
    assertTrue(written.getFileName().toString().matches("del-[0-9a-f]+\\.json"), written.toString());
    try (Stream<Path> files = Files.walk(dir)) {
      assertEquals(List.of(written), files.filter(Files::isRegularFile).filter(f -> !f.equals(socket)).toList());
    }
  }
}

package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The plugin protocol's HTTP subset, served on a real Unix socket by the server alone (an echoing handler). */
class PluginSocketServerTest {
  private static final int MAX_BODY = 1024;

  Path dir;
  Path socket;
  PluginSocketServer server;
  final BlockingQueue<PluginSocketServer.Request> seen = new LinkedBlockingQueue<>();
  final ExecutorService handlerThread = Executors.newSingleThreadExecutor();

  @BeforeEach
  void listen() throws IOException {
    dir = Files.createTempDirectory("pss");
    socket = dir.resolve("cni.sock");
    server = listen(Duration.ofSeconds(30));
  }

  PluginSocketServer listen(Duration readTimeout) throws IOException {
    return PluginSocketServer.listen(socket, MAX_BODY, readTimeout, handlerThread::execute, (request, respond) -> {
      seen.add(request);
      String body = request.oversize() > 0 ? "oversize " + request.oversize()
          : request.method() + " " + request.path() + " " + new String(request.body(), StandardCharsets.UTF_8);
      respond.accept(new PluginSocketServer.Response(200, Map.of("Cni-Exit-Code", "7"), body));
    });
  }

  @AfterEach
  void close() throws IOException {
    server.close();
    handlerThread.shutdownNow();
    Files.deleteIfExists(socket);
    Files.deleteIfExists(dir);
  }

  SocketChannel connect() throws IOException {
    SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
    channel.connect(UnixDomainSocketAddress.of(socket));
    return channel;
  }

  static void send(SocketChannel channel, byte[] bytes) throws IOException {
    ByteBuffer out = ByteBuffer.wrap(bytes);
    while (out.hasRemaining()) {
      channel.write(out);
    }
  }

  /** Everything the server writes until it closes the connection. */
  static String answer(SocketChannel channel) throws IOException {
    ByteArrayOutputStream in = new ByteArrayOutputStream();
    ByteBuffer buf = ByteBuffer.allocate(8192);
    while (channel.read(buf) >= 0) {
      in.write(buf.array(), 0, buf.position());
      buf.clear();
    }
    return in.toString(StandardCharsets.UTF_8);
  }

  String exchange(String request) throws IOException {
    try (SocketChannel channel = connect()) {
      send(channel, request.getBytes(StandardCharsets.UTF_8));
      return answer(channel);
    }
  }

  static String post(String path, String body) {
    return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + body.getBytes(StandardCharsets.UTF_8).length
        + "\r\n\r\n" + body;
  }

  @Test
  void aRequestReachesTheHandlerAndItsAnswerIsWrittenWithLengthAndHeaders() throws IOException {
    String reply = exchange(post("/cni", "{\"env\":{}} é"));
    assertTrue(reply.startsWith("HTTP/1.1 200 OK\r\n"), reply);
    assertTrue(reply.contains("\r\nCni-Exit-Code: 7\r\n"), reply);
    String body = "POST /cni {\"env\":{}} é";
    assertTrue(reply.contains("\r\nContent-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n"), reply);
    assertTrue(reply.endsWith("\r\n\r\n" + body), reply);
  }

  @Test
  void aBodyArrivingInPiecesIsReadWhole() throws Exception {
    try (SocketChannel channel = connect()) {
      send(channel, "POST /cni HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234".getBytes(StandardCharsets.US_ASCII));
      // The server must not answer on half a body: nothing reaches the handler yet.
      assertEquals(null, seen.poll(200, TimeUnit.MILLISECONDS));
      send(channel, "56789".getBytes(StandardCharsets.US_ASCII));
      assertTrue(answer(channel).endsWith("POST /cni 0123456789"));
    }
  }

  @Test
  void malformedRequestsAreAnsweredByTheServerWithoutReachingTheHandler() throws Exception {
    assertTrue(exchange("POST /cni HTTP/1.1\r\nHost: x\r\n\r\n").startsWith("HTTP/1.1 411 "));
    assertTrue(exchange("POST /cni HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        .startsWith("HTTP/1.1 400 "));
    assertTrue(exchange("POST /cni HTTP/1.1\r\nContent-Length: x12\r\n\r\n").startsWith("HTTP/1.1 400 "));
    assertTrue(exchange("POST /cni HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n")
        .startsWith("HTTP/1.1 400 "));
    assertTrue(exchange("POST /cni HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
        .startsWith("HTTP/1.1 400 "));
    assertTrue(exchange("POST /cni HTTP/1.1\r\nContent-Length: 1\r\n\r\nxyz").startsWith("HTTP/1.1 400 "));
    assertTrue(exchange("hello\r\n\r\n").startsWith("HTTP/1.1 400 "));
    assertTrue(exchange("POST /cni HTTP/1.1\r\nno colon here\r\n\r\n").startsWith("HTTP/1.1 400 "));
    String hugeHead = "POST /cni HTTP/1.1\r\nX: " + "a".repeat(2 * PluginSocketServer.MAX_HEAD_BYTES) + "\r\n\r\n";
    assertTrue(exchange(hugeHead).contains("request head larger than"));
    assertEquals(null, seen.poll(100, TimeUnit.MILLISECONDS), "no malformed request reached the handler");
  }

  @Test
  void anOversizedBodyIsDroppedAndTheHandlerToldHowLargeItWas() throws Exception {
    String reply = exchange(post("/cni", "x".repeat(MAX_BODY * 50)));
    assertTrue(reply.endsWith("oversize " + MAX_BODY * 50), reply);
    PluginSocketServer.Request request = seen.poll(5, TimeUnit.SECONDS);
    assertEquals(0, request.body().length);
  }

  @Test
  void aClientThatSendsNothingHoldsUpNobodyAndIsDisconnectedAtTheReadTimeout() throws Exception {
    server.close();
    Files.deleteIfExists(socket);
    server = listen(Duration.ofMillis(500));
    try (SocketChannel silent = connect()) {
      assertTrue(exchange(post("/cni", "meanwhile")).endsWith("POST /cni meanwhile"));
      // Disconnected by the server: the read ends (EOF or reset) instead of blocking forever.
      CompletableFuture<String> ended = CompletableFuture.supplyAsync(() -> {
        try {
          return answer(silent);
        } catch (IOException e) {
          return "reset";
        }
      });
      ended.get(10, TimeUnit.SECONDS);
    }
    assertEquals(1, seen.size(), "only the complete request reached the handler");
  }

  @Test
  void manyConcurrentRequestsAreEachAnsweredWithTheirOwnBody() throws Exception {
    ExecutorService clients = Executors.newFixedThreadPool(32);
    try {
      List<CompletableFuture<String>> replies = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        String body = "pod-" + i;
        replies.add(CompletableFuture.supplyAsync(() -> {
          try {
            return exchange(post("/cni", body));
          } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        }, clients));
      }
      for (int i = 0; i < replies.size(); i++) {
        assertTrue(replies.get(i).get(30, TimeUnit.SECONDS).endsWith("POST /cni pod-" + i));
      }
    } finally {
      clients.shutdownNow();
    }
  }

  @Test
  void closeDisconnectsOpenConnectionsAndStopsAccepting() throws Exception {
    SocketChannel open = connect();
    send(open, "POST /cni HTTP/1.1\r\nContent-Length: 5\r\n\r\nab".getBytes(StandardCharsets.US_ASCII));
    server.close();
    CompletableFuture<String> ended = CompletableFuture.supplyAsync(() -> {
      try {
        return answer(open);
      } catch (IOException e) {
        return "reset";
      }
    });
    assertFalse(ended.get(10, TimeUnit.SECONDS).contains("200 OK"), "a half-sent request is not answered");
    open.close();
    assertThrows(IOException.class, this::connect, "nothing accepts after close");
  }
}

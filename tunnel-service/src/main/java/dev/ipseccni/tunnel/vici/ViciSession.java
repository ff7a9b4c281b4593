package dev.ipseccni.tunnel.vici;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One connection to charon's VICI socket. All methods block: call them from a worker
 * thread, never from an event loop.
 *
 * <p>A reader thread owns the socket's input: replies go to the one command in flight
 * (commands are serialised, as charon answers them in order), events of a streamed
 * command (list-sa during list-sas) are collected for it, other events go to
 * subscribers on a separate dispatch thread, so a subscriber may call commands itself.
 * When the socket fails, the command in flight fails, the session is closed and the
 * close listeners learn why; the owner reconnects with a new session.
 *
 * <p>Message bodies are never logged: load-shared carries keys.
 */
public final class ViciSession implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ViciSession.class.getName());
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

  private final Path socket;
  private final SocketChannel channel;
  private final Duration timeout;
  private final ReentrantLock commandLock = new ReentrantLock();
  private final BlockingQueue<Object> replies = new LinkedBlockingQueue<>();
  private final Map<String, List<Consumer<ViciEvent>>> subscribers = new ConcurrentHashMap<>();
  private final List<Consumer<IOException>> closeListeners = new CopyOnWriteArrayList<>();
  private final ExecutorService dispatch;
  private volatile Stream stream;
  private volatile IOException closedBecause;

  /** Events of one streamed command, collected by the reader thread. */
  private record Stream(String event, List<ViciMessage> items) {}

  private ViciSession(Path socket, SocketChannel channel, Duration timeout) {
    this.socket = socket;
    this.channel = channel;
    this.timeout = timeout;
    this.dispatch = Executors.newSingleThreadExecutor(r -> daemon(r, "vici-events " + socket));
    daemon(this::readLoop, "vici-reader " + socket).start();
  }

  public static ViciSession connect(Path socket) throws IOException {
    return connect(socket, DEFAULT_TIMEOUT);
  }

  /**
   * @param timeout how long a command may wait for charon's answer; on expiry the session
   *     is closed, because a late answer could otherwise be taken for the next command's
   */
  public static ViciSession connect(Path socket, Duration timeout) throws IOException {
    SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      channel.connect(UnixDomainSocketAddress.of(socket));
    } catch (IOException e) {
      channel.close();
      throw new ViciException("cannot connect to charon's VICI socket " + socket + ": " + e.getMessage(), e);
    }
    return new ViciSession(socket, channel, timeout);
  }

  public Path socket() {
    return socket;
  }

  public boolean isOpen() {
    return closedBecause == null;
  }

  /** Called once, on any thread, when the session closes (socket dropped, protocol error, or close()). */
  public void onClose(Consumer<IOException> listener) {
    closeListeners.add(listener);
    IOException why = closedBecause;
    if (why != null) {
      listener.accept(why);
    }
  }

  // ---- commands -------------------------------------------------------------------

  /** daemon, version, sysname, release, machine. */
  public ViciMessage version() throws ViciException {
    return call("version", ViciMessage.empty());
  }

  /** The algorithms charon's plugins provide, by kind (encryption, aead, integrity, prf, dh, …): name → plugin. */
  public ViciMessage getAlgorithms() throws ViciException {
    return call("get-algorithms", ViciMessage.empty());
  }

  /** Daemon statistics, among them the {@code plugins} charon loaded. */
  public ViciMessage stats() throws ViciException {
    return call("stats", ViciMessage.empty());
  }

  /** Loads (or replaces) one connection; {@code conn} is its body as in swanctl.conf. */
  public void loadConn(String name, ViciMessage conn) throws ViciException {
    call("load-conn", ViciMessage.builder().section(name, conn).build());
  }

  public void unloadConn(String name) throws ViciException {
    call("unload-conn", ViciMessage.builder().put("name", name).build());
  }

  /** Loads a shared secret: {@code id}, {@code type} (IKE), {@code data}, {@code owners}. */
  public void loadShared(ViciMessage shared) throws ViciException {
    call("load-shared", shared);
  }

  /**
   * Loads a certificate: {@code type} x509 (with {@code flag} CA for a CA, none otherwise) or
   * x509crl, {@code data} PEM or DER. charon keeps it in its VICI credential set.
   */
  public void loadCert(String type, String flag, String pem) throws ViciException {
    call("load-cert", ViciMessage.builder().put("type", type).put("flag", flag).put("data", pem).build());
  }

  /** Loads a private key ({@code type} any, rsa, ecdsa, …; {@code data} PEM); charon answers with its id. */
  public String loadKey(String type, String pem) throws ViciException {
    return call("load-key", ViciMessage.builder().put("type", type).put("data", pem).build()).value("id").orElse("");
  }

  /** Removes a private key by the id load-key returned. */
  public void unloadKey(String id) throws ViciException {
    call("unload-key", ViciMessage.builder().put("id", id).build());
  }

  public void unloadShared(String id) throws ViciException {
    call("unload-shared", ViciMessage.builder().put("id", id).build());
  }

  /** Unique ids of the loaded shared secrets. */
  public List<String> getShared() throws ViciException {
    return call("get-shared", ViciMessage.empty()).list("keys");
  }

  /** Names of the loaded connections. */
  public List<String> getConns() throws ViciException {
    return call("get-conns", ViciMessage.empty()).list("conns");
  }

  /** Every IKE SA, one list-sa event each: {@code {<conn name>: {state, child-sas: {...}, ...}}}. */
  public List<ViciMessage> listSas() throws ViciException {
    return streamed("list-sas", ViciMessage.empty(), "list-sa");
  }

  /** IKE SAs of one connection. */
  public List<ViciMessage> listSas(String ike) throws ViciException {
    return streamed("list-sas", ViciMessage.builder().put("ike", ike).build(), "list-sa");
  }

  /**
   * Initiates a CHILD SA (and its IKE SA).
   *
   * @param timeoutMillis charon's wait for the result: 0 waits until done, negative returns at once
   */
  public void initiate(String child, String ike, int timeoutMillis) throws ViciException {
    call("initiate", ViciMessage.builder().put("child", child).put("ike", ike)
        .put("timeout", timeoutMillis).put("init-limits", false).build());
  }

  /**
   * Re-authenticates the IKE SAs of a connection: a new IKE SA authenticates afresh (with the
   * keys loaded now) and takes over the CHILD SAs. Before the old one goes when charon's
   * {@code make_before_break} is on, after it otherwise. Returns once charon has queued it.
   */
  public void reauthenticate(String ike) throws ViciException {
    call("rekey", ViciMessage.builder().put("ike", ike).put("reauth", true).build());
  }

  /** Terminates an IKE SA by connection name, waiting for the peer to confirm the delete. */
  public void terminate(String ike) throws ViciException {
    call("terminate", ViciMessage.builder().put("ike", ike).put("timeout", 0).build());
  }

  /** Terminates one IKE SA by its unique id, without waiting for the peer. */
  public void terminateIkeId(String uniqueId) throws ViciException {
    call("terminate", ViciMessage.builder().put("ike-id", uniqueId).put("force", true).put("timeout", 0).build());
  }

  /**
   * Terminates an IKE SA without waiting for the peer (which may be gone for good): the
   * delete is sent once and the SA removed at once.
   */
  public void terminateForced(String ike) throws ViciException {
    call("terminate", ViciMessage.builder().put("ike", ike).put("force", true).put("timeout", 0).build());
  }

  /**
   * Sends a command and checks {@code success} when the answer has one: {@code success = no}
   * raises {@link ViciCommandException} with charon's errmsg.
   */
  public ViciMessage call(String command, ViciMessage request) throws ViciException {
    ViciMessage answer = request(command, request);
    if (answer.value("success").filter("no"::equals).isPresent()) {
      throw new ViciCommandException(command, answer.value("errmsg").orElse("(no reason given)"));
    }
    return answer;
  }

  /** Sends a command and returns charon's answer as it is. */
  public ViciMessage request(String command, ViciMessage request) throws ViciException {
    commandLock.lock();
    try {
      return exchange(ViciPacket.request(command, request), command).message();
    } finally {
      commandLock.unlock();
    }
  }

  /** A command that streams events before its answer: register, send, collect, unregister. */
  public List<ViciMessage> streamed(String command, ViciMessage request, String event) throws ViciException {
    commandLock.lock();
    try {
      register(event);
      List<ViciMessage> items = new ArrayList<>();
      stream = new Stream(event, items);
      ViciMessage answer;
      try {
        answer = exchange(ViciPacket.request(command, request), command).message();
      } finally {
        stream = null;
      }
      unregister(event);
      if (answer.value("success").filter("no"::equals).isPresent()) {
        throw new ViciCommandException(command, answer.value("errmsg").orElse("(no reason given)"));
      }
      synchronized (items) {
        return List.copyOf(items);
      }
    } finally {
      commandLock.unlock();
    }
  }

  // ---- events ---------------------------------------------------------------------

  /**
   * Delivers every {@code event} (e.g. ike-updown, child-updown) to {@code subscriber}, on the
   * session's dispatch thread, in the order charon sent them.
   */
  public void subscribe(String event, Consumer<ViciEvent> subscriber) throws ViciException {
    commandLock.lock();
    try {
      if (!subscribers.containsKey(event)) {
        register(event);
      }
      subscribers.computeIfAbsent(event, e -> new CopyOnWriteArrayList<>()).add(subscriber);
    } finally {
      commandLock.unlock();
    }
  }

  private void register(String event) throws ViciException {
    ViciPacket reply = exchange(new ViciPacket(ViciPacketType.EVENT_REGISTER, event, ViciMessage.empty()), event);
    if (reply.type() != ViciPacketType.EVENT_CONFIRM) {
      throw new ViciException("charon does not know event '" + event + "'");
    }
  }

  private void unregister(String event) throws ViciException {
    exchange(new ViciPacket(ViciPacketType.EVENT_UNREGISTER, event, ViciMessage.empty()), event);
  }

  // ---- the socket -------------------------------------------------------------------

  private ViciPacket exchange(ViciPacket packet, String what) throws ViciException {
    ensureOpen();
    replies.clear();
    // a close between the check and the clear would have lost its marker
    ensureOpen();
    ByteBuffer frame = ViciCodec.encodeFrame(packet);
    try {
      while (frame.hasRemaining()) {
        channel.write(frame);
      }
    } catch (IOException e) {
      shutdown(e);
      throw new ViciException("cannot send " + what + " to charon: " + e.getMessage(), e);
    }
    Object reply;
    try {
      reply = replies.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      shutdown(new ViciException("interrupted while waiting for " + what));
      throw new ViciException("interrupted while waiting for charon's answer to " + what, e);
    }
    if (reply == null) {
      ViciException late = new ViciException("charon did not answer " + what + " within " + timeout.toMillis() + " ms");
      shutdown(late);
      throw late;
    }
    if (reply instanceof IOException closed) {
      throw new ViciException("VICI session closed while waiting for " + what + ": " + closed.getMessage(), closed);
    }
    ViciPacket answer = (ViciPacket) reply;
    if (answer.type() == ViciPacketType.CMD_UNKNOWN) {
      throw new ViciException("charon does not know command '" + what + "'");
    }
    return answer;
  }

  private void ensureOpen() throws ViciException {
    IOException why = closedBecause;
    if (why != null) {
      throw new ViciException("VICI session to " + socket + " is closed: " + why.getMessage(), why);
    }
  }

  private void readLoop() {
    try {
      while (true) {
        ViciPacket packet = ViciCodec.readFrame(channel);
        switch (packet.type()) {
          case EVENT -> onEvent(packet);
          case CMD_RESPONSE, CMD_UNKNOWN, EVENT_CONFIRM, EVENT_UNKNOWN -> replies.add(packet);
          default -> throw new ViciProtocolException("charon sent a " + packet.type() + " packet");
        }
      }
    } catch (EOFException e) {
      shutdown(new ViciException("charon closed the VICI socket"));
    } catch (ViciException e) {
      shutdown(e);
    } catch (IOException e) {
      // A charon killed with the session open resets it rather than closing it: the same for the owner.
      shutdown(new ViciException("charon closed the VICI socket (" + e.getMessage() + ")", e));
    } catch (RuntimeException e) {
      shutdown(new ViciException("VICI reader failed", e));
    }
  }

  private void onEvent(ViciPacket packet) {
    Stream s = stream;
    if (s != null && s.event().equals(packet.name())) {
      synchronized (s.items()) {
        s.items().add(packet.message());
      }
      return;
    }
    List<Consumer<ViciEvent>> targets = subscribers.get(packet.name());
    if (targets == null) {
      return;
    }
    ViciEvent event = new ViciEvent(packet.name(), packet.message());
    try {
      dispatch.execute(() -> targets.forEach(t -> {
        try {
          t.accept(event);
        } catch (RuntimeException e) {
          LOG.log(Level.WARNING, "subscriber of " + event.name() + " failed", e);
        }
      }));
    } catch (java.util.concurrent.RejectedExecutionException closing) {
      // session is closing; the event is lost with it
    }
  }

  private void shutdown(IOException why) {
    synchronized (this) {
      if (closedBecause != null) {
        return;
      }
      closedBecause = why;
    }
    try {
      channel.close();
    } catch (IOException ignored) {
      // closing anyway
    }
    replies.add(why);
    dispatch.shutdown();
    for (Consumer<IOException> l : closeListeners) {
      try {
        l.accept(why);
      } catch (RuntimeException e) {
        LOG.log(Level.WARNING, "VICI close listener failed", e);
      }
    }
  }

  @Override
  public void close() {
    shutdown(new ViciException("VICI session closed by its owner"));
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }
}

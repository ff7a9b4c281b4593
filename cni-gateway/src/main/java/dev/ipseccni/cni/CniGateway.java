package dev.ipseccni.cni;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.CheckRequest;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.GcRequest;
import dev.ipseccni.bus.message.GcResult;
import dev.ipseccni.bus.message.PodEvent;
import dev.ipseccni.bus.message.ReleaseRequest;
import dev.ipseccni.cni.plugin.IpsecCniPlugin;
import dev.ipseccni.cni.plugin.PluginCall;
import dev.ipseccni.cni.plugin.PluginProtocol;
import dev.ipseccni.cni.plugin.PluginReply;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The node agent's side of the plugin binary: serves CNI calls (spec 1.1.0, answering
 * 0.3.0 … 1.0.0 runtimes in their own format) on a Unix socket, one method per command.
 * Addresses come from the node's IPAM over the bus, the datapath from the reference
 * bridge plugin; every ADD and DEL is published as a pod event. DELs the plugin could not
 * deliver while the agent was down are replayed from the pending-DEL directory.
 */
public final class CniGateway extends VerticleBase {
  private static final System.Logger LOG = System.getLogger(CniGateway.class.getName());

  private final CniGatewaySettings settings;
  private final EventPublisher events;
  private final ProcessSpawner spawner;
  private final BridgeDelegate delegate;
  private final PendingDeleteReplay replay;
  private volatile PluginSocketServer server;
  private long replayTimer = -1;
  private boolean serving;

  public CniGateway(CniGatewaySettings settings, EventPublisher events) {
    this.settings = settings;
    this.events = events;
    // beside the socket: the agent's state directory, private to it
    this.spawner = ProcessSpawner.extractedInto(settings.socketPath().toAbsolutePath().getParent().resolve("spawner"));
    this.delegate = new BridgeDelegate(settings, spawner);
    this.replay = new PendingDeleteReplay(settings.pendingDelDir());
  }

  @Override
  public Future<?> start() {
    Path socket = settings.socketPath();
    return vertx.eventBus()
        .consumer(Addresses.nodeStatus(settings.nodeName(), Addresses.CNI_GATEWAY), this::answerStatus)
        .completion()
        .compose(v -> blocking(() -> {
          prepareSocketPath(socket);
          return null;
        }))
        .compose(v -> blocking(() -> {
          server = PluginSocketServer.listen(socket, PluginProtocol.MAX_REQUEST_BYTES, REQUEST_READ_TIMEOUT,
              task -> context.runOnContext(x -> task.run()), this::handle);
          return Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
        }))
        .onSuccess(v -> {
          serving = true;
          LOG.log(System.Logger.Level.INFO, "CNI gateway of {0} listening on {1}", settings.nodeName(), socket);
          replayPendingDeletes();
          replayTimer = vertx.setPeriodic(settings.replayInterval().toMillis(), t -> replayPendingDeletes());
        });
  }

  @Override
  public Future<?> stop() {
    serving = false;
    vertx.cancelTimer(replayTimer);
    PluginSocketServer listening = server;
    return blocking(() -> {
          if (listening != null) {
            listening.close();
          }
          return Files.deleteIfExists(settings.socketPath());
        })
        .eventually(() -> blocking(() -> {
          spawner.close();
          return null;
        }));
  }

  /** What runs the gateway's commands; the node's other commands (the bridge's {@code ip}) may share it. */
  public ProcessSpawner spawner() {
    return spawner;
  }

  /** The socket's directory is 0700, so nobody else can connect in the moment before the socket becomes 0600. */
  private static void prepareSocketPath(Path socket) throws java.io.IOException {
    Path dir = socket.toAbsolutePath().getParent();
    if (!Files.isDirectory(dir)) {
      Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }
    Files.deleteIfExists(socket);
  }

  private void answerStatus(Message<Object> request) {
    request.reply(serving ? ComponentStatus.ready(Addresses.CNI_GATEWAY)
        : ComponentStatus.notReady(Addresses.CNI_GATEWAY, "CNI socket " + settings.socketPath() + " not listening"));
  }

  /** How long a client may take to send its whole request before it is disconnected. */
  static final java.time.Duration REQUEST_READ_TIMEOUT = java.time.Duration.ofSeconds(30);

  private void handle(PluginSocketServer.Request request, Consumer<PluginSocketServer.Response> respond) {
    if (!request.method().equals(PluginProtocol.METHOD) || !request.path().equals(PluginProtocol.PATH)) {
      respond.accept(PluginSocketServer.Response.of(404, "the CNI gateway answers " + PluginProtocol.METHOD + " "
          + PluginProtocol.PATH + " only"));
      return;
    }
    if (request.oversize() > 0) {
      respond.accept(reply(PluginReply.error(latestVersion(), CniError.INVALID_NETWORK_CONFIG, "CNI request of "
          + request.oversize() + " bytes is larger than the " + PluginProtocol.MAX_REQUEST_BYTES
          + " bytes the gateway accepts", "is stdin a network config?")));
      return;
    }
    PluginCall call;
    try {
      call = PluginCall.fromJson(new String(request.body(), StandardCharsets.UTF_8));
    } catch (IllegalArgumentException e) {
      respond.accept(PluginSocketServer.Response.of(400, String.valueOf(e.getMessage())));
      return;
    }
    serve(call).onComplete(done -> respond.accept(reply(done.succeeded() ? done.result()
        : PluginReply.error(latestVersion(), CniError.INTERNAL, "internal error in the CNI gateway",
            String.valueOf(done.cause())))));
  }

  private static PluginSocketServer.Response reply(PluginReply reply) {
    return new PluginSocketServer.Response(200, Map.of(PluginProtocol.EXIT_CODE_HEADER,
        Integer.toString(reply.exitCode()), "Content-Type", PluginProtocol.CONTENT_TYPE), reply.stdout());
  }

  private static String latestVersion() {
    return PluginProtocol.SUPPORTED_VERSIONS.get(PluginProtocol.SUPPORTED_VERSIONS.size() - 1);
  }

  /** One CNI call, answered as the plugin must print it. Never fails: errors become CNI error replies. */
  public Future<PluginReply> serve(PluginCall call) {
    long began = System.nanoTime();
    Future<PluginReply> answered;
    try {
      answered = answer(call);
    } catch (RuntimeException e) {
      // A runtime waits on the plugin, which waits on us: every call gets an answer, even a bug's.
      LOG.log(System.Logger.Level.ERROR, "CNI " + call.env("CNI_COMMAND") + " failed", e);
      answered = Future.failedFuture(e);
    }
    return answered.andThen(done -> recordLatency(call, done.succeeded() ? done.result().exitCode()
        : CniError.INTERNAL, System.nanoTime() - began));
  }

  /** Timer name of the CNI command latency, tagged by command and exit code (0 or the CNI error code). */
  public static final String COMMAND_TIMER = "ipsec.cni.command";

  private static void recordLatency(PluginCall call, int code, long nanos) {
    String command = call.env("CNI_COMMAND");
    String tag = command != null && command.matches("[A-Z]{1,10}") ? command : "INVALID";
    io.micrometer.core.instrument.Metrics.timer(COMMAND_TIMER, "command", tag, "code", Integer.toString(code))
        .record(nanos, java.util.concurrent.TimeUnit.NANOSECONDS);
  }

  private Future<PluginReply> answer(PluginCall call) {
    String latest = settings.supportedVersions().get(settings.supportedVersions().size() - 1);
    String version = NetworkConfig.versionForErrors(call.stdin(), latest);
    Future<String> answer;
    try {
      CniCommand command = CniCommand.parse(call.env("CNI_COMMAND"));
      if (command == CniCommand.VERSION) {
        return Future.succeededFuture(IpsecCniPlugin.run(call));
      }
      CniRequest request = CniRequest.parse(call.env(), call.stdin(), settings.supportedVersions());
      CniEnvironment env = request.env();
      NetworkConfig config = request.config();
      answer = switch (command) {
        case ADD -> add(env, config, Optional.ofNullable(call.interfacePresent()));
        case DEL -> del(env, config);
        case CHECK -> check(env, config);
        case GC -> gc(config);
        case STATUS -> status(env);
        case VERSION -> throw new IllegalStateException("answered above");
      };
    } catch (CniError e) {
      answer = Future.failedFuture(e);
    }
    // Every step below has its own bound (bus timeouts, the delegate's), this one catches a future left pending.
    long bound = 2 * settings.busTimeout().toMillis() + 2 * BridgeDelegate.TIMEOUT_SECONDS * 1000;
    return answer.timeout(bound, TimeUnit.MILLISECONDS).map(PluginReply::success).otherwise(failure -> {
      CniError error = failure instanceof CniError e ? e
          : new CniError(CniError.INTERNAL, "internal error in the CNI gateway", String.valueOf(failure));
      if (error.code() == CniError.INTERNAL) {
        LOG.log(System.Logger.Level.ERROR, "CNI " + call.env("CNI_COMMAND") + " failed", failure);
      }
      return PluginReply.error(version, error.code(), String.valueOf(error.getMessage()), error.details());
    });
  }

  // ---- the commands ----

  /** @param interfacePresent what the client found in the pod's namespace; empty: look here */
  private Future<String> add(CniEnvironment env, NetworkConfig config, Optional<Boolean> interfacePresent) {
    // A requested address is IPAM's to grant or refuse (102, with the reason); a malformed one fails here, first.
    AllocateRequest key = new AllocateRequest(config.name(), env.containerId(), env.ifName(),
        RequestedAddress.of(env.args(), config).orElse(""));
    // An existing interface is refused before an address is taken: the clean-up of a failed ADD
    // (the delegate's DEL) would remove it, and a working pod with it.
    Future<Boolean> present = interfacePresent.isPresent() ? Future.succeededFuture(interfacePresent.get())
        : blocking(() -> delegate.interfaceExists(env.netns(), env.ifName()));
    return present
        .compose(exists -> exists ? Future.failedFuture(new CniError(CniError.INTERFACE_EXISTS,
            "interface " + env.ifName() + " already exists in " + env.netns())) : Future.succeededFuture())
        .compose(v -> allocateWhenReady(env, config, key))
        .compose(allocation -> attach(env, config, allocation)
            .recover(failure -> cleanUpFailedAdd(env, config, allocation).transform(x -> Future.failedFuture(failure))))
        .map(result -> {
          CniResult full = config.prevResult().map(result::appendedTo).orElse(result);
          events.publish(Addresses.POD_ADDED, new PodEvent(config.name(), env.containerId(), env.ifName(),
              env.args().podNamespace(), env.args().podName(), result.firstAddress()));
          return full.toJson(config.cniVersion()).encode();
        });
  }

  /**
   * The readiness check and the allocation run side by side (both are bus round trips on
   * every pod's path); a node found not ready gives the address back and answers 11.
   */
  private Future<Allocation> allocateWhenReady(CniEnvironment env, NetworkConfig config, AllocateRequest key) {
    // The allocation (a journal write on disk) is the longer of the two: it is sent first.
    Future<Allocation> allocated = request(Addresses.ipamAllocate(settings.nodeName()), key, Allocation.class);
    Future<List<ComponentStatus>> failing = notReady();
    return Future.join(failing, allocated).transform(both -> {
      if (failing.result().isEmpty()) {
        return allocated;
      }
      CniError notReady = new CniError(CniError.TRY_AGAIN_LATER, "node " + settings.nodeName()
          + " is not ready for pods yet: " + describe(failing.result()));
      Future<Object> givenBack = allocated.failed() ? Future.succeededFuture() : request(
          Addresses.ipamRelease(settings.nodeName()), new ReleaseRequest(config.name(), env.containerId(), env.ifName()),
          Object.class);
      return givenBack
          .onFailure(e -> LOG.log(System.Logger.Level.WARNING, "address of " + env.containerId() + "/" + env.ifName()
              + " not given back after a not-ready ADD: " + e))
          .transform(x -> Future.failedFuture(notReady));
    });
  }

  private Future<CniResult> attach(CniEnvironment env, NetworkConfig config, Allocation allocation) {
    return blocking(() -> {
      BridgeDelegate.Outcome outcome = delegate.add(env, config, allocation);
      if (!outcome.ok()) {
        throw outcome.asError("ADD of " + env.ifName() + " in " + env.netns());
      }
      try {
        return CniResult.fromJson(new JsonObject(outcome.stdout()))
            .withSandboxMtu(config.mtu().orElse(settings.mtu()));
      } catch (RuntimeException e) {
        throw new CniError(CniError.DATAPATH_FAILED, "the bridge plugin returned an unreadable result", e.getMessage());
      }
    });
  }

  /** A failed ADD leaves nothing behind: the delegate's DEL, then the address back to IPAM. */
  private Future<Void> cleanUpFailedAdd(CniEnvironment env, NetworkConfig config, Allocation allocation) {
    return blocking(() -> delegate.del(env, config))
        .onFailure(e -> LOG.log(System.Logger.Level.WARNING, "delegate DEL after a failed ADD failed: " + e))
        .transform(delegateDone -> request(Addresses.ipamRelease(settings.nodeName()),
            new ReleaseRequest(config.name(), env.containerId(), env.ifName()), Object.class))
        .<Void>mapEmpty()
        .onFailure(e -> LOG.log(System.Logger.Level.WARNING,
            "clean-up after a failed ADD of " + env.containerId() + "/" + env.ifName() + " failed: " + e));
  }

  private Future<String> del(CniEnvironment env, NetworkConfig config) {
    // Interface first, address second: an address must not be handed out while a veth still answers for it.
    return blocking(() -> {
          BridgeDelegate.Outcome outcome = delegate.del(env, config);
          if (!outcome.ok()) {
            throw outcome.asError("DEL of " + env.ifName() + " in " + env.netns());
          }
          return null;
        })
        .compose(v -> request(Addresses.ipamRelease(settings.nodeName()),
            new ReleaseRequest(config.name(), env.containerId(), env.ifName()), Object.class))
        .onSuccess(released -> {
          if (released instanceof Allocation allocation) {
            events.publish(Addresses.POD_DELETED, new PodEvent(config.name(), env.containerId(), env.ifName(),
                env.args().podNamespace(), env.args().podName(), allocation.address()));
          }
        })
        .map("");
  }

  private Future<String> check(CniEnvironment env, NetworkConfig config) {
    CniResult prev = config.prevResult().orElseThrow(() ->
        new CniError(CniError.INVALID_NETWORK_CONFIG, "CHECK needs prevResult in the network config"));
    return request(Addresses.ipamCheck(settings.nodeName()),
        new CheckRequest(config.name(), env.containerId(), env.ifName()), Allocation.class)
        .compose(allocation -> {
          boolean listed = prev.ips().stream().anyMatch(ip -> ip.address().equals(allocation.address()));
          if (!listed) {
            return Future.failedFuture(new CniError(CniError.INVALID_NETWORK_CONFIG, "prevResult does not hold "
                + allocation.address() + ", the address IPAM gave " + env.containerId() + "/" + env.ifName()));
          }
          return blocking(() -> {
            BridgeDelegate.Outcome outcome = delegate.check(env, config, allocation, prev);
            if (!outcome.ok()) {
              throw outcome.asError("CHECK of " + env.ifName() + " in " + env.netns());
            }
            return "";
          });
        });
  }

  private Future<String> gc(NetworkConfig config) {
    GcRequest gc = new GcRequest(config.name(), config.validAttachments());
    return request(Addresses.ipamGc(settings.nodeName()), gc, GcResult.class)
        .map(result -> {
          for (Allocation a : result.released()) {
            events.publish(Addresses.POD_DELETED, new PodEvent(a.network(), a.containerId(), a.ifName(), "", "",
                a.address()));
          }
          return "";
        });
  }

  /**
   * 50 while pods cannot be added; 51 when only the tunnel or firewall is down, which also
   * means pods already running may not reach other nodes.
   */
  private Future<String> status(CniEnvironment env) {
    // Every ADD execs the delegate from CNI_PATH: a runtime whose CNI_PATH lacks it could add no pod.
    if (!env.path().isEmpty() && BridgeDelegate.locate(env.path(), BridgeDelegate.PLUGIN).isEmpty()) {
      return Future.failedFuture(new CniError(CniError.NOT_AVAILABLE, "node " + settings.nodeName()
          + " cannot add pods: the reference plugin '" + BridgeDelegate.PLUGIN + "' is not in CNI_PATH " + env.path()
          + " (install containernetworking-plugins there)"));
    }
    return notReady().compose(failing -> {
      if (failing.isEmpty()) {
        return Future.succeededFuture("");
      }
      boolean onlyDegrading = failing.stream().allMatch(f -> DEGRADING.contains(f.component()));
      return Future.failedFuture(new CniError(
          onlyDegrading ? CniError.NOT_AVAILABLE_DEGRADED : CniError.NOT_AVAILABLE,
          "node " + settings.nodeName() + " cannot add pods: " + describe(failing)));
    });
  }

  /** Components whose failure also harms running pods (their cross-node traffic), not only new ones. */
  private static final List<String> DEGRADING = List.of(Addresses.TUNNEL, Addresses.FIREWALL);

  // ---- readiness ----

  /** The components that are not ready (empty when the node is), each with its reason. */
  Future<List<ComponentStatus>> notReady() {
    List<Future<ComponentStatus>> answers = new ArrayList<>();
    DeliveryOptions options = nodeLocal();
    for (String component : settings.readinessComponents()) {
      answers.add(vertx.eventBus()
          .<ComponentStatus>request(Addresses.nodeStatus(settings.nodeName(), component), null, options)
          .map(Message::body)
          .otherwise(failure -> ComponentStatus.notReady(component, "not answering (" + failure.getMessage() + ")")));
    }
    return Future.join(answers).transform(all -> Future.succeededFuture(
        answers.stream().map(Future::result).filter(status -> !status.ready()).toList()));
  }

  private static String describe(List<ComponentStatus> failing) {
    return failing.stream().map(s -> s.component() + ": " + s.reason()).collect(java.util.stream.Collectors.joining("; "));
  }

  // ---- pending DELs ----

  private void replayPendingDeletes() {
    replay.run(vertx, this::serve).onComplete(done -> {
      if (done.failed()) {
        LOG.log(System.Logger.Level.WARNING, "replaying pending DELs failed: " + done.cause());
      }
    });
  }

  /** Replays pending DELs now; the future completes with how many were replayed successfully. */
  public Future<Integer> replayPendingDeletesNow() {
    io.vertx.core.Promise<Integer> done = io.vertx.core.Promise.promise();
    context.runOnContext(v -> replay.run(vertx, this::serve).onComplete(done));
    return done.future();
  }

  // ---- plumbing ----

  /**
   * Every request of the gateway goes to this node's own services (the addresses carry the
   * node name): local only, so the clustered bus does not look the address up in the
   * cluster's registry (a Hazelcast lookup, possibly on another node) on each pod's path.
   */
  private DeliveryOptions nodeLocal() {
    return new DeliveryOptions().setSendTimeout(settings.busTimeout().toMillis()).setLocalOnly(true);
  }

  private <T> Future<T> request(String address, Object body, Class<T> replyType) {
    return vertx.eventBus().<Object>request(address, body, nodeLocal())
        .recover(failure -> Future.failedFuture(asCniError(address, failure)))
        .map(reply -> replyType.cast(reply.body()));
  }

  /** IPAM failure codes are CNI codes (bus Failures); a missing or silent IPAM means "try again later". */
  private CniError asCniError(String address, Throwable failure) {
    if (failure instanceof ReplyException reply) {
      if (reply.failureType() == ReplyFailure.RECIPIENT_FAILURE) {
        return new CniError(reply.failureCode(), reply.getMessage(), address);
      }
      return new CniError(CniError.TRY_AGAIN_LATER, "no answer on " + address + " (" + reply.failureType()
          + "): is the IPAM service of " + settings.nodeName() + " running?", String.valueOf(reply.getMessage()));
    }
    return new CniError(CniError.INTERNAL, "request to " + address + " failed", String.valueOf(failure));
  }

  private <T> Future<T> blocking(Callable<T> work) {
    return vertx.executeBlocking(work, false);
  }
}

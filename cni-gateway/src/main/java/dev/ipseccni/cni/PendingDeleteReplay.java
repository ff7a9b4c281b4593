package dev.ipseccni.cni;

import dev.ipseccni.cni.plugin.PluginCall;
import dev.ipseccni.cni.plugin.PluginProtocol;
import dev.ipseccni.cni.plugin.PluginReply;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * Replays the DELs the plugin recorded while the agent was unreachable, one at a time,
 * removing each file once its DEL succeeded; a DEL that fails (IPAM not ready yet) stays
 * for the next round. A file that is not a DEL request is moved aside, not retried forever.
 */
final class PendingDeleteReplay {
  private static final System.Logger LOG = System.getLogger(PendingDeleteReplay.class.getName());

  private final Path dir;
  private Future<Integer> inFlight;

  PendingDeleteReplay(Path dir) {
    this.dir = dir;
  }

  /** Replays what is pending; while a replay runs, returns that one (callers wait for the same round). */
  Future<Integer> run(Vertx vertx, Function<PluginCall, Future<PluginReply>> serve) {
    if (inFlight != null) {
      return inFlight;
    }
    inFlight = vertx.executeBlocking(this::pendingFiles, false)
        .compose(files -> {
          Future<Integer> done = Future.succeededFuture(0);
          for (Path file : files) {
            done = done.compose(count -> replayOne(vertx, file, serve).map(ok -> ok ? count + 1 : count));
          }
          return done;
        })
        .onComplete(x -> inFlight = null);
    return inFlight;
  }

  private Future<Boolean> replayOne(Vertx vertx, Path file, Function<PluginCall, Future<PluginReply>> serve) {
    return vertx.executeBlocking(() -> Files.readString(file, StandardCharsets.UTF_8), false)
        .compose(json -> {
          PluginCall call;
          try {
            call = PluginCall.fromJson(json);
          } catch (IllegalArgumentException e) {
            return vertx.executeBlocking(() -> {
              Files.move(file, file.resolveSibling(file.getFileName() + ".invalid"));
              return false;
            }, false);
          }
          if (!call.env("CNI_COMMAND").equals("DEL")) {
            return vertx.executeBlocking(() -> {
              Files.move(file, file.resolveSibling(file.getFileName() + ".invalid"));
              return false;
            }, false);
          }
          return serve.apply(call).compose(reply -> {
            if (reply.exitCode() != 0) {
              LOG.log(System.Logger.Level.WARNING, "pending DEL " + file.getFileName() + " not done yet: "
                  + reply.stdout().strip());
              return Future.succeededFuture(false);
            }
            return vertx.executeBlocking(() -> Files.deleteIfExists(file), false);
          });
        })
        .otherwise(failure -> {
          LOG.log(System.Logger.Level.WARNING, "pending DEL " + file.getFileName() + ": " + failure);
          return false;
        });
  }

  private List<Path> pendingFiles() throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(f -> {
        String name = f.getFileName().toString();
        return name.startsWith("del-") && name.endsWith(PluginProtocol.PENDING_DEL_SUFFIX);
      }).sorted().toList();
    }
  }
}

package dev.ipseccni.agent;

import dev.ipseccni.cni.CniGatewaySettings;
import dev.ipseccni.cni.Conflist;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.logging.Logger;

/**
 * Writes the conflist into the CNI conf dir once the node is ready, and again if it
 * disappears: its presence is what tells the runtime that the node's network is ready,
 * so it must not appear before a pod could be attached.
 */
final class ConflistWriter extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(ConflistWriter.class.getName());
  private static final long CHECK_MILLIS = 1_000;

  private final Path confDir;
  private final CniGatewaySettings settings;
  private final NodeReadiness readiness;
  private long timer = -1;
  private boolean checking;
  private String lastReason = "";

  ConflistWriter(Path confDir, CniGatewaySettings settings, NodeReadiness readiness) {
    this.confDir = confDir;
    this.settings = settings;
    this.readiness = readiness;
  }

  @Override
  public Future<?> start() {
    timer = vertx.setPeriodic(0, CHECK_MILLIS, id -> check());
    return Future.succeededFuture();
  }

  @Override
  public Future<?> stop() {
    vertx.cancelTimer(timer);
    return Future.succeededFuture();
  }

  private void check() {
    if (checking) {
      return;
    }
    checking = true;
    readiness.check().compose(statuses -> {
      if (!NodeReadiness.allReady(statuses)) {
        String reason = statuses.stream().filter(s -> !s.ready())
            .map(s -> s.component() + ": " + s.reason()).reduce((a, b) -> a + "; " + b).orElse("");
        if (!reason.equals(lastReason)) {
          LOG.info(() -> "node not ready, conflist not written yet: " + reason);
          lastReason = reason;
        }
        return Future.succeededFuture();
      }
      lastReason = "";
      return vertx.executeBlocking(() -> {
        Path file = confDir.resolve(Conflist.FILE_NAME);
        String wanted = Conflist.render(settings).encodePrettily();
        if (Files.exists(file) && Files.readString(file).equals(wanted + "\n")) {
          return null;
        }
        Path written = Conflist.write(confDir, settings);
        LOG.info(() -> "node ready: wrote " + written);
        return null;
      }, false);
    }).onComplete(done -> {
      checking = false;
      if (done.failed()) {
        LOG.warning(() -> "cannot write the conflist into " + confDir + ": " + done.cause().getMessage());
      }
    });
  }
}

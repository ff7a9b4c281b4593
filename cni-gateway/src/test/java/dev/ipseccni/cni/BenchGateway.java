package dev.ipseccni.cni;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.cni.plugin.PluginProtocol;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A gateway for bench/cni/run.sh: the CNI gateway with the in-test IPAM responder, its
 * datapath in the given node namespace. Prints "ready" and serves until stdin closes.
 *
 * <p>Arguments: node namespace, socket path.
 */
public final class BenchGateway {
  private BenchGateway() {}

  public static void main(String[] args) throws Exception {
    String nodeNs = args[0];
    Path socket = Path.of(args[1]);
    List<String> inNode = List.of("ip", "netns", "exec", nodeNs);
    new NodeBridge("cni0", inNode).ensure(InTestIpam.GATEWAY + "/24", 1400);
    Vertx vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
    InTestIpam ipam = new InTestIpam();
    ipam.register(vertx, nodeNs).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    CniGatewaySettings settings = new CniGatewaySettings(nodeNs, socket, "ipsec-cni", "cni0", 1400,
        PluginProtocol.pendingDelDir(socket), PluginProtocol.SUPPORTED_VERSIONS, List.of(Addresses.IPAM), inNode,
        Duration.ofSeconds(5), Duration.ofHours(1));
    vertx.deployVerticle(new CniGateway(settings, new EventPublisher(vertx.eventBus(), nodeNs, 1)))
        .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    System.out.println("ready");
    System.out.flush();
    System.in.readAllBytes();
    vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }
}

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.ReleaseRequest;
import dev.ipseccni.ipam.BlockLeases;
import dev.ipseccni.ipam.IpamService;
import dev.ipseccni.ipam.IpamSettings;
import dev.ipseccni.ipam.NodeBlocks;
import io.vertx.core.Future;
import io.vertx.core.eventbus.DeliveryOptions;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * IPAM benchmark: pod allocation through the service (event bus, journal forced to disk)
 * on one node, and block claim latency in a 3-member cluster (all in this JVM, on loopback).
 * Usage: IpamBench <journal base dir> [allocations]
 */
public class IpamBench {
  static final DeliveryOptions LOCAL = new DeliveryOptions().setLocalOnly(true);

  static <T> T await(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get(300, TimeUnit.SECONDS);
  }

  static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  static String stats(long[] nanos) {
    long[] s = nanos.clone();
    Arrays.sort(s);
    return String.format("median %.3f ms, p99 %.3f ms, max %.3f ms (n=%d)", s[s.length / 2] / 1e6,
        s[(int) (s.length * 0.99)] / 1e6, s[s.length - 1] / 1e6, s.length);
  }

  public static void main(String[] args) throws Exception {
    Path base = Files.createDirectories(Path.of(args[0])).resolve("bench-" + UUID.randomUUID());
    int n = args.length > 1 ? Integer.parseInt(args[1]) : 3000;
    String cluster = "ipt-bench-" + UUID.randomUUID();
    int[] ports = {freePort(), freePort(), freePort()};
    List<String> members = List.of("127.0.0.1:" + ports[0], "127.0.0.1:" + ports[1], "127.0.0.1:" + ports[2]);
    List<ClusterBootstrap.JoinedCluster> nodes = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      nodes.add(await(ClusterBootstrap.join(new ClusterSettings(cluster, "bench" + i, "127.0.0.1", ports[i], 0,
          members, false, ClusterSettings.Timing.DEFAULT), List.of(BlockLeases.customizer(3)))));
    }
    var first = nodes.get(0);
    System.out.println("cluster of " + first.hazelcast().getCluster().getMembers().size() + " members up");

    // ---- block claims (3-member cluster, majority required) ----
    BlockLeases leases = new BlockLeases(first.hazelcast(), NodeBlocks.of("10.128.0.0/16", 24), Duration.ofMinutes(10));
    int claims = 200;
    long[] claimNanos = new long[claims];
    for (int i = 0; i < claims; i++) {
      long t0 = System.nanoTime();
      leases.claim("claimer-" + i, "127.0.0.1", List.of());
      claimNanos[i] = System.nanoTime() - t0;
    }
    System.out.println("block claim (new node, empty→200 leases of 256): " + stats(claimNanos));
    long[] reclaimNanos = new long[claims];
    List<String> held = new ArrayList<>();
    for (int i = 0; i < claims; i++) {
      long t0 = System.nanoTime();
      held.add(leases.claim("claimer-" + i, "127.0.0.1", List.of()).block());
      reclaimNanos[i] = System.nanoTime() - t0;
    }
    System.out.println("block re-claim (restarted node takes its own block back): " + stats(reclaimNanos));
    for (int i = 0; i < claims; i++) {
      leases.release("claimer-" + i, held.get(i));
    }

    // ---- pod allocations through the service, journal on ----
    IpamSettings settings = IpamSettings.defaults("bench-node", "127.0.0.1", "bench", 3)
        .withNetwork("10.129.0.0/16", 20).withJournalDir(base);
    IpamService service = new IpamService(settings, new EventPublisher(first.vertx().eventBus(), "bench-node", 1),
        first.hazelcast());
    await(first.vertx().deployVerticle(service));
    while (!service.view().ready()) {
      Thread.sleep(10);
    }
    var bus = first.vertx().eventBus();
    String alloc = Addresses.ipamAllocate("bench-node");
    String release = Addresses.ipamRelease("bench-node");
    // warm-up
    for (int i = 0; i < 500; i++) {
      await(bus.request(alloc, new AllocateRequest("bench", "w" + i, "eth0"), LOCAL));
      await(bus.request(release, new ReleaseRequest("bench", "w" + i, "eth0"), LOCAL));
    }
    long[] one = new long[n];
    for (int i = 0; i < n; i++) {
      long t0 = System.nanoTime();
      await(bus.request(alloc, new AllocateRequest("bench", "s" + i, "eth0"), LOCAL));
      one[i] = System.nanoTime() - t0;
    }
    System.out.println("ADD, one at a time: " + stats(one));
    long[] del = new long[n];
    for (int i = 0; i < n; i++) {
      long t0 = System.nanoTime();
      await(bus.request(release, new ReleaseRequest("bench", "s" + i, "eth0"), LOCAL));
      del[i] = System.nanoTime() - t0;
    }
    System.out.println("DEL, one at a time: " + stats(del));

    for (int concurrency : new int[] {1, 16, 64}) {
      AtomicInteger next = new AtomicInteger();
      long[] lat = new long[n];
      long t0 = System.nanoTime();
      List<Future<Void>> chains = new ArrayList<>();
      for (int c = 0; c < concurrency; c++) {
        chains.add(chain(first.vertx(), alloc, "p" + concurrency + "-", n, next, lat));
      }
      await(Future.all(chains));
      double seconds = (System.nanoTime() - t0) / 1e9;
      System.out.printf("ADD throughput, %d in flight: %.0f allocations/s; latency %s%n", concurrency, n / seconds,
          stats(lat));
      for (int i = 0; i < n; i++) {
        await(bus.request(release, new ReleaseRequest("bench", "p" + concurrency + "-" + i, "eth0"), LOCAL));
      }
    }
    for (int i = nodes.size() - 1; i >= 0; i--) {
      await(nodes.get(i).vertx().close());
    }
    System.exit(0);
  }

  static Future<Void> chain(io.vertx.core.Vertx vertx, String address, String prefix, int n, AtomicInteger next,
                            long[] lat) {
    int i = next.getAndIncrement();
    if (i >= n) {
      return Future.succeededFuture();
    }
    long t0 = System.nanoTime();
    return vertx.eventBus().request(address, new AllocateRequest("bench", prefix + i, "eth0"), LOCAL)
        .compose(m -> {
          lat[i] = System.nanoTime() - t0;
          return chain(vertx, address, prefix, n, next, lat);
        });
  }
}

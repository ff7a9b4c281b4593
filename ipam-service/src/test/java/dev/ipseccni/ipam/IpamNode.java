package dev.ipseccni.ipam;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.GcRequest;
import dev.ipseccni.bus.message.GcResult;
import dev.ipseccni.bus.message.ReleaseRequest;
import dev.ipseccni.bus.message.NodeBlockLease;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.ReplyException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A cluster member for the multi-JVM tests: joins the cluster, runs IPAM services, and
 * obeys line commands on stdin, answering on stdout (ACK lines only after the reply).
 * Arguments are key=value: node, bind, port, members (comma-separated), expected,
 * journal (base dir), preferred, blockLength, cluster, mergeDelay, compactAfter.
 */
public final class IpamNode {
  private static final String NET = "ipsec-cni";
  private static final DeliveryOptions LOCAL = new DeliveryOptions().setLocalOnly(true).setSendTimeout(60_000);
  private static final Map<String, IpamService> services = new ConcurrentHashMap<>();
  private static Map<String, String> args;
  private static ClusterBootstrap.JoinedCluster cluster;

  static synchronized void out(String line) {
    System.out.println(line);
    System.out.flush();
  }

  public static void main(String[] argv) throws Exception {
    args = new HashMap<>();
    for (String a : argv) {
      int eq = a.indexOf('=');
      args.put(a.substring(0, eq), a.substring(eq + 1));
    }
    int expected = Integer.parseInt(args.get("expected"));
    int mergeDelay = Integer.parseInt(args.getOrDefault("mergeDelay", "15"));
    ClusterSettings cs = new ClusterSettings(args.get("cluster"), args.get("node"), args.get("bind"),
        Integer.parseInt(args.get("port")), 0, List.of(args.get("members").split(",")), false,
        new ClusterSettings.Timing(1, 1, 5, mergeDelay));
    cluster = ClusterBootstrap.join(cs, List.of(BlockLeases.customizer(expected)))
        .toCompletionStage().toCompletableFuture().get(120, TimeUnit.SECONDS);
    out("STARTED " + ProcessHandle.current().pid());
    deploy(args.get("node"), args.getOrDefault("preferred", "-"));
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
    String line;
    while ((line = in.readLine()) != null) {
      String[] w = line.trim().split("\\s+");
      try {
        command(w);
      } catch (Exception e) {
        out("FAILED " + line + " " + e);
      }
    }
    Runtime.getRuntime().halt(0);
  }

  private static void deploy(String node, String preferred) throws Exception {
    int expected = Integer.parseInt(args.get("expected"));
    IpamSettings s = IpamSettings.defaults(node, args.get("bind"), NET, expected)
        .withJournalDir(Path.of(args.get("journal")).resolve(node))
        .withNetwork(IpamSettings.DEFAULT_CLUSTER_CIDR, Integer.parseInt(args.getOrDefault("blockLength", "24")))
        .withTimings(Duration.ofSeconds(1), Duration.ofMinutes(10), Duration.ofMillis(300))
        .withCompactAfterRecords(Integer.parseInt(args.getOrDefault("compactAfter", "10000")));
    if (!preferred.equals("-")) {
      s = s.withPreferredBlock(preferred);
    }
    IpamService service = new IpamService(s, new EventPublisher(cluster.vertx().eventBus(), node, 1),
        cluster.hazelcast());
    services.put(node, service);
    cluster.vertx().deployVerticle(service).toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    out("DEPLOYED " + node);
    Thread ready = new Thread(() -> {
      while (!service.view().ready()) {
        try {
          Thread.sleep(20);
        } catch (InterruptedException e) {
          return;
        }
      }
      out("READY " + node + " " + service.view().lease().map(NodeBlockLease::block).orElse("?"));
    });
    ready.setDaemon(true);
    ready.start();
  }

  private static void command(String[] w) throws Exception {
    Vertx vertx = cluster.vertx();
    switch (w[0]) {
      case "deploy" -> deploy(w[1], w[2]);
      case "alloc" -> {
        String node = w[1];
        String prefix = w[2];
        int n = Integer.parseInt(w[3]);
        int concurrency = Integer.parseInt(w[4]);
        AtomicInteger next = new AtomicInteger();
        AtomicInteger running = new AtomicInteger(concurrency);
        for (int c = 0; c < concurrency; c++) {
          vertx.runOnContext(v -> allocChain(vertx, node, prefix, n, next, running));
        }
      }
      case "stream" -> vertx.runOnContext(v -> new Stream(vertx, w[1], w[2], Integer.parseInt(w[3])).start());
      case "view" -> {
        IpamView view = services.get(w[1]).view();
        view.allocations().forEach(a -> out("HAVE " + a.containerId() + " " + a.address()));
        out("LEASE " + w[1] + " " + view.lease().map(l -> l.block() + " " + l.epoch()).orElse("none"));
        out("DONE view " + w[1]);
      }
      case "status" -> {
        IpamView view = services.get(w[1]).view();
        out("STATUS " + w[1] + " " + view.ready() + " " + view.reason());
      }
      case "members" -> out("MEMBERS " + cluster.hazelcast().getCluster().getMembers().size());
      case "leases" -> {
        new BlockLeases(cluster.hazelcast(), NodeBlocks.of(IpamSettings.DEFAULT_CLUSTER_CIDR,
            Integer.parseInt(args.getOrDefault("blockLength", "24"))), Duration.ofMinutes(10)).all()
            .values().forEach(l -> out("LEASEMAP " + l.block() + " " + l.node() + " " + l.epoch()));
        out("DONE leases");
      }
      case "mirror" -> {
        cluster.hazelcast().<String, String>getMap(BlockLeases.ADDRESS_MAP).forEach((k, v) -> out("MIRROR " + k));
        out("DONE mirror");
      }
      case "gc" -> gc(vertx, w[1], w[2]);
      case "gc-stopping-at" -> {
        // the next GC stops for good at this step: the test's kill -9 lands there
        String step = w[2];
        services.get(w[1]).allocations().onGcStep(reached -> {
          if (reached.equals(step)) {
            out("GC-STOPPED-AT " + reached);
            while (true) {
              try {
                Thread.sleep(Long.MAX_VALUE);
              } catch (InterruptedException e) {
                // only the kill ends this
              }
            }
          }
        });
        gc(vertx, w[1], w[3]);
      }
      default -> out("FAILED unknown command " + Arrays.toString(w));
    }
  }

  /** GC with every allocation whose container id starts with keepPrefix as a valid attachment. */
  private static void gc(Vertx vertx, String node, String keepPrefix) {
    List<GcRequest.Attachment> valid = services.get(node).view().allocations().stream()
        .filter(a -> a.containerId().startsWith(keepPrefix))
        .map(a -> new GcRequest.Attachment(a.containerId(), a.ifName())).toList();
    vertx.eventBus().<GcResult>request(Addresses.ipamGc(node), new GcRequest(NET, valid), LOCAL).onComplete(r ->
        out(r.succeeded() ? "GC-DONE " + r.result().body().released().size() : "GC-FAILED " + r.cause()));
  }

  private static Future<Allocation> allocate(Vertx vertx, String node, String cid) {
    return vertx.eventBus().<Allocation>request(Addresses.ipamAllocate(node), new AllocateRequest(NET, cid, "eth0"),
        LOCAL).map(m -> m.body());
  }

  private static void allocChain(Vertx vertx, String node, String prefix, int n, AtomicInteger next,
                                 AtomicInteger running) {
    int i = next.getAndIncrement();
    if (i >= n) {
      if (running.decrementAndGet() == 0) {
        out("DONE alloc " + node + " " + prefix);
      }
      return;
    }
    String cid = prefix + i;
    allocate(vertx, node, cid).onComplete(r -> {
      if (r.succeeded()) {
        out("ACK " + node + " " + cid + " " + r.result().address());
      } else {
        int code = r.cause() instanceof ReplyException re ? re.failureCode() : -1;
        out("ERR " + node + " " + cid + " " + code + " " + r.cause().getMessage());
      }
      allocChain(vertx, node, prefix, n, next, running);
    });
  }

  /** Endless allocations; once more than 100 are live, the oldest acknowledged one is released. */
  private static final class Stream {
    private final Vertx vertx;
    private final String node;
    private final String prefix;
    private final int concurrency;
    private final ArrayDeque<String> live = new ArrayDeque<>();
    private int next;

    Stream(Vertx vertx, String node, String prefix, int concurrency) {
      this.vertx = vertx;
      this.node = node;
      this.prefix = prefix;
      this.concurrency = concurrency;
      // What an earlier run left is released first, oldest first, like any other allocation.
      services.get(node).view().allocations().forEach(a -> live.add(a.containerId()));
    }

    void start() {
      for (int c = 0; c < concurrency; c++) {
        step();
      }
    }

    private void step() {
      Optional<String> toRelease = live.size() > 100 ? Optional.of(live.poll()) : Optional.empty();
      if (toRelease.isPresent()) {
        String cid = toRelease.get();
        out("RELSENT " + cid);
        vertx.eventBus().request(Addresses.ipamRelease(node), new ReleaseRequest(NET, cid, "eth0"), LOCAL)
            .onComplete(r -> {
              out(r.succeeded() ? "REL " + cid : "ERR " + node + " " + cid + " release " + r.cause());
              step();
            });
        return;
      }
      String cid = prefix + next++;
      allocate(vertx, node, cid).onComplete(r -> {
        if (r.succeeded()) {
          out("ACK " + node + " " + cid + " " + r.result().address());
          live.add(cid);
        } else {
          out("ERR " + node + " " + cid + " " + r.cause().getMessage());
        }
        step();
      });
    }
  }
}

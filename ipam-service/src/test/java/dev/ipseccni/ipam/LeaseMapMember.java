package dev.ipseccni.ipam;

import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.IpPrefix;
import dev.ipseccni.bus.message.NodeBlockLease;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A cluster member holding the lease map and nothing else (no IPAM service renewing or
 * expiring anything), for the merge tests: joins with the product's lease-map configuration
 * and obeys line commands on stdin, answering on stdout. Arguments are key=value: node, bind,
 * port, members (comma-separated), expected, cluster, mergeDelay, graceMillis.
 */
public final class LeaseMapMember {
  private static ClusterBootstrap.JoinedCluster cluster;
  private static BlockLeases leases;

  static synchronized void out(String line) {
    System.out.println(line);
    System.out.flush();
  }

  /**
   * Renews the node's lease of the block every 50 ms from now on, like an IPAM service does
   * every second; says LOST (once per different value) when a renewal answers with another
   * holder, and keeps renewing what it held.
   */
  private static void renewLoop(String node, String block) {
    NodeBlockLease held = leases.get(block).filter(l -> l.node().equals(node)).orElseThrow();
    Thread loop = new Thread(() -> {
      String lastLost = "";
      while (true) {
        try {
          NodeBlockLease current = leases.renew(held);
          String seen = current.node() + " " + current.epoch();
          if (!current.node().equals(node) && !seen.equals(lastLost)) {
            out("LOST " + block + " to " + seen);
            lastLost = seen;
          }
        } catch (RuntimeException e) {
          // no majority or a member leaving: the renewal is tried again, as IpamService does
        }
        try {
          Thread.sleep(50); // the renewal interval
        } catch (InterruptedException e) {
          return;
        }
      }
    }, "renew-" + node);
    loop.setDaemon(true);
    loop.start();
    out("RENEWING " + node + " " + block);
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = new HashMap<>();
    for (String a : argv) {
      int eq = a.indexOf('=');
      args.put(a.substring(0, eq), a.substring(eq + 1));
    }
    int expected = Integer.parseInt(args.get("expected"));
    ClusterSettings cs = new ClusterSettings(args.get("cluster"), args.get("node"), args.get("bind"),
        Integer.parseInt(args.get("port")), 0, List.of(args.get("members").split(",")), false,
        new ClusterSettings.Timing(1, 1, 5, Integer.parseInt(args.getOrDefault("mergeDelay", "5"))));
    cluster = ClusterBootstrap.join(cs, List.of(BlockLeases.customizer(expected)))
        .toCompletionStage().toCompletableFuture().get(120, TimeUnit.SECONDS);
    leases = new BlockLeases(cluster.hazelcast(), NodeBlocks.of(IpamSettings.DEFAULT_CLUSTER_CIDR, 24),
        Duration.ofMillis(Long.parseLong(args.getOrDefault("graceMillis", "1000"))));
    cluster.hazelcast().getLifecycleService().addLifecycleListener(e -> out("LIFECYCLE " + e.getState()));
    out("STARTED " + ProcessHandle.current().pid());
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
    String line;
    while ((line = in.readLine()) != null) {
      String[] w = line.trim().split("\\s+");
      try {
        switch (w[0]) {
          case "claim" -> {
            try {
              NodeBlockLease l = leases.claim(w[1], "192.0.2.1", List.of(IpPrefix.parse(w[2])));
              out("CLAIM " + l.block() + " " + l.node() + " " + l.epoch());
            } catch (Exception e) {
              out("CLAIM failed " + e);
            }
          }
          case "get" -> out("VALUE " + w[1] + " " + leases.get(w[1]).map(l -> l.node() + " " + l.epoch())
              .or(() -> leases.releasedEpoch(w[1]).map(e -> "released " + e)).orElse("none"));
          case "renew-loop" -> renewLoop(w[1], w[2]);
          case "members" -> out("MEMBERS " + cluster.hazelcast().getCluster().getMembers().size() + " "
              + cluster.hazelcast().getCluster().getMembers().stream().map(m -> m.getAddress().getHost()).sorted()
              .toList());
          default -> out("FAILED unknown command " + line);
        }
      } catch (Exception e) {
        out("FAILED " + line + " " + e);
      }
    }
    Runtime.getRuntime().halt(0);
  }
}

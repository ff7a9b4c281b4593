import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.tunnel.ClusterSecret;
import dev.ipseccni.tunnel.Datapath;
import dev.ipseccni.tunnel.PairKeys;
import dev.ipseccni.tunnel.PeerTunnel;
import dev.ipseccni.tunnel.TunnelPlan;
import dev.ipseccni.tunnel.TunnelRenderer;
import dev.ipseccni.tunnel.TunnelSettings;
import dev.ipseccni.tunnel.vici.ViciMessage;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Reconcile cost of the tunnel service at scale, CPU time of the calling thread (no charon):
 * render the desired tunnels for N peer leases, the plan (diff) against what is loaded, and
 * the work of a full reload (load-conn + load-shared bodies, with the per-pair key derivation,
 * and the rendered swanctl.conf). Usage: TunnelBench [peers] [runs]
 */
public class TunnelBench {
  static final ThreadMXBean CPU = ManagementFactory.getThreadMXBean();

  static <T> long[] measure(int runs, Supplier<T> work) {
    for (int i = 0; i < 30; i++) {
      work.get(); // warm-up
    }
    long[] out = new long[runs];
    for (int i = 0; i < runs; i++) {
      long t0 = CPU.getCurrentThreadCpuTime();
      T r = work.get();
      out[i] = CPU.getCurrentThreadCpuTime() - t0;
      if (r == null) {
        throw new IllegalStateException();
      }
    }
    return out;
  }

  static String stats(long[] nanos) {
    long[] s = nanos.clone();
    Arrays.sort(s);
    return String.format("median %.3f ms CPU, min %.3f, max %.3f (n=%d)", s[s.length / 2] / 1e6, s[0] / 1e6,
        s[s.length - 1] / 1e6, s.length);
  }

  public static void main(String[] args) throws Exception {
    int peers = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
    int runs = args.length > 1 ? Integer.parseInt(args[1]) : 21;
    Path dir = Files.createTempDirectory("tunnel-bench");
    Path secretFile = dir.resolve("secret");
    Files.createFile(secretFile, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.writeString(secretFile, "bench-secret-0123456789abcdef0123456789abcdef0123456789");
    try {
      TunnelSettings settings = TunnelSettings.of("node0", "10.0.0.1", dir.resolve("vici"), secretFile,
          Datapath.LIBIPSEC, dir.resolve("swanctl.conf"));
      ClusterSecret secret = ClusterSecret.load(secretFile);
      TunnelRenderer renderer = new TunnelRenderer(settings);
      List<NodeBlockLease> leases = new ArrayList<>();
      // node0 + N peers, /24 blocks out of a 10.0.0.0/8-sized space, underlay 10.x.y.z
      for (int i = 0; i <= peers; i++) {
        leases.add(new NodeBlockLease("node" + i, "10." + (i >> 16 & 255) + "." + (i >> 8 & 255) + "." + (i & 255 | 1),
            "10." + (128 + (i >> 8)) + "." + (i & 255) + ".0/24", 1, 0));
      }
      NodeBlockLease own = leases.get(0);
      Map<String, PeerTunnel> desired = renderer.desired(own, leases);
      Map<String, PeerTunnel> applied = new HashMap<>(desired);
      Set<String> inCharon = Set.copyOf(desired.keySet());
      // one peer moved to a new underlay address: one reload, nothing else
      List<NodeBlockLease> moved = new ArrayList<>(leases);
      NodeBlockLease m = moved.get(peers / 2);
      moved.set(peers / 2, new NodeBlockLease(m.node(), "10.255.255.254", m.block(), 2, 0));

      System.out.printf("peers: %d, runs: %d (medians of CPU time on the calling thread)%n", peers, runs);
      System.out.println("render desired (leases -> tunnels):       " + stats(measure(runs, () -> renderer.desired(own, leases))));
      System.out.println("steady reconcile (render + diff, no-op):  " + stats(measure(runs, () -> {
        TunnelPlan p = TunnelPlan.between(renderer.desired(own, leases), applied, inCharon);
        if (!p.isEmpty()) {
          throw new IllegalStateException("expected no change");
        }
        return p;
      })));
      System.out.println("one peer moved (render + diff):           " + stats(measure(runs, () -> {
        TunnelPlan p = TunnelPlan.between(renderer.desired(own, moved), applied, inCharon);
        if (p.load().size() != 1 || !p.unload().isEmpty()) {
          throw new IllegalStateException("expected one load: " + p.load().size());
        }
        return p;
      })));
      System.out.println("charon restarted (render + diff, all):    " + stats(measure(runs, () -> {
        TunnelPlan p = TunnelPlan.between(renderer.desired(own, leases), Map.of(), Set.of());
        if (p.load().size() != peers) {
          throw new IllegalStateException();
        }
        return p;
      })));
      System.out.println("full reload bodies (load-conn+load-shared, key derivation): " + stats(measure(runs, () -> {
        List<ViciMessage> bodies = new ArrayList<>(2 * peers);
        for (PeerTunnel t : desired.values()) {
          bodies.add(renderer.connection(t));
          bodies.addAll(renderer.sharedKeys(t, PairKeys.of(secret)));
        }
        return bodies;
      })));
      System.out.println("rendered swanctl.conf text:               " + stats(measure(runs, () -> renderer.swanctlConf(desired.values(), t -> PairKeys.of(secret)))));
      // What a periodic reconcile does instead of rendering when nothing changed: compare the inputs.
      Map<String, PeerTunnel> lastTunnels = Map.copyOf(desired);
      Map<String, String> lastKeys = new java.util.HashMap<>();
      desired.values().forEach(t -> lastKeys.put(t.connName(), PairKeys.of(secret).offered().id()));
      System.out.println("unchanged check instead of rendering:     " + stats(measure(runs, () -> {
        Map<String, String> keyIds = new java.util.HashMap<>();
        desired.values().forEach(t -> keyIds.put(t.connName(), PairKeys.of(secret).offered().id()));
        if (!desired.equals(lastTunnels) || !keyIds.equals(lastKeys)) {
          throw new IllegalStateException();
        }
        return keyIds;
      })));
    } finally {
      Files.deleteIfExists(secretFile);
      Files.deleteIfExists(dir);
    }
  }
}

package dev.ipseccni.tunnel.lab;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.tunnel.vici.ViciSession;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * A small lab for tests: network namespaces, links and one charon per namespace, all named
 * {@code vt-<jvm pid>-…} so that a later run can remove what a crashed run left behind
 * (namespaces whose pid is gone), and nothing of anyone else is touched.
 *
 * <p>charon runs as in production on a netns node: its own strongswan.conf bind-mounted by
 * {@code ip netns exec} from /etc/netns/NAME/, its own tmpfs /run, kernel-libipsec as the
 * datapath (this kernel has no ESP), the VICI socket at a path the test JVM can reach.
 */
public final class NetnsLab implements AutoCloseable {
  public static final Path CHARON = Path.of("/usr/lib/ipsec/charon");
  private static final String PREFIX = "vt-";
  private static final long PID = ProcessHandle.current().pid();

  private final List<String> namespaces = new ArrayList<>();
  private final List<Charon> charons = new ArrayList<>();
  private final Path dir;

  /** A running charon in a namespace. */
  public record Charon(String namespace, Process process, Path vici, Path log) {
    public ViciSession connect() throws IOException {
      return ViciSession.connect(vici, Duration.ofSeconds(20));
    }

    public String logTail() {
      try {
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
      } catch (IOException e) {
        return "(no log: " + e.getMessage() + ")";
      }
    }
  }

  /** Fails the test, with the reason, where charon or root is missing: such a test never skips. */
  public static void requireCharonAndRoot() {
    assertTrue(Files.isExecutable(CHARON), "strongSwan charon not installed at " + CHARON);
    assertTrue("0".equals(run(List.of("id", "-u")).trim()), "needs root for network namespaces");
  }

  public NetnsLab() throws IOException {
    sweepStale();
    dir = Files.createTempDirectory(PREFIX + PID + "-");
  }

  public Path dir() {
    return dir;
  }

  /** A namespace named vt-PID-suffix, with lo up. */
  public String namespace(String suffix) {
    String name = PREFIX + PID + "-" + suffix;
    run(List.of("ip", "netns", "add", name));
    namespaces.add(name);
    exec(name, "ip", "link", "set", "lo", "up");
    return name;
  }

  /** A veth pair between two namespaces, each end addressed (CIDR) and up. */
  public void veth(String nsA, String addrA, String nsB, String addrB) {
    String a = "vt" + PID + "a";
    String b = "vt" + PID + "b";
    run(List.of("ip", "link", "add", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB));
    exec(nsA, "ip", "addr", "add", addrA, "dev", a);
    exec(nsA, "ip", "link", "set", a, "up");
    exec(nsB, "ip", "addr", "add", addrB, "dev", b);
    exec(nsB, "ip", "link", "set", b, "up");
  }

  /** A bridge in a namespace carrying {@code cidr} (the gateway address): stands in for cni0. */
  public void bridge(String ns, String name, String cidr) {
    exec(ns, "ip", "link", "add", name, "type", "bridge");
    exec(ns, "ip", "addr", "add", cidr, "dev", name);
    exec(ns, "ip", "link", "set", name, "up");
  }

  /** The plugins the lab's charons load: everything the tunnel service's default proposals need. */
  public static final String PLUGINS = "random nonce aes sha1 sha2 hmac gcm pem pkcs1 x509 pubkey openssl gmp curve25519"
      + " kdf kernel-libipsec kernel-netlink socket-default vici updown";

  /** Starts charon in {@code ns} and waits until it answers on VICI. */
  public Charon charon(String ns) throws IOException {
    return charon(ns, PLUGINS, "");
  }

  /**
   * Starts charon in {@code ns} with these plugins ({@code charon.load}) and extra lines in
   * its {@code charon} section (e.g. retransmit settings), and waits until it answers on VICI.
   */
  public Charon charon(String ns, String plugins, String extraSettings) throws IOException {
    Path home = Files.createDirectories(dir.resolve(ns));
    Path vici = home.resolve("charon.vici");
    Path log = home.resolve("charon.log");
    Path etc = Path.of("/etc/netns", ns);
    Files.createDirectories(etc);
    Files.writeString(etc.resolve("strongswan.conf"), strongswanConf(vici, log, plugins, extraSettings));
    Process p = new ProcessBuilder("ip", "netns", "exec", ns, "unshare", "-m", "sh", "-c",
        "mount -t tmpfs none /run && exec " + CHARON)
        .redirectErrorStream(true)
        .redirectOutput(home.resolve("charon.out").toFile())
        .start();
    Charon charon = new Charon(ns, p, vici, log);
    charons.add(charon);
    awaitTrue(Duration.ofSeconds(20), () -> {
      if (!p.isAlive()) {
        throw new IllegalStateException("charon in " + ns + " exited: " + charon.logTail());
      }
      if (!Files.exists(vici)) {
        return false;
      }
      try (ViciSession s = charon.connect()) {
        s.version();
        return true;
      } catch (IOException e) {
        return false;
      }
    }, "charon in " + ns + " answering on " + vici);
    return charon;
  }

  /** Stops a charon (SIGTERM, then SIGKILL) and waits for it to exit. */
  public void stop(Charon charon) {
    charon.process().destroy();
    try {
      if (!charon.process().waitFor(10, TimeUnit.SECONDS)) {
        charon.process().destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  static String strongswanConf(Path vici, Path log, String plugins, String extraSettings) {
    return String.join("\n",
        "charon {",
        "  load = " + plugins,
        extraSettings,
        "  install_routes = yes",
        "  make_before_break = yes",
        "  plugins {",
        "    vici {",
        "      socket = unix://" + vici,
        "    }",
        "  }",
        "  filelog {",
        "    lab {",
        "      path = " + log,
        "      default = 1",
        "      ike = 2",
        "      cfg = 2",
        "      flush_line = yes",
        "    }",
        "  }",
        "}",
        "");
  }

  /** Runs a command inside a namespace and returns its output; fails on a non-zero exit. */
  public static String exec(String ns, String... command) {
    List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", ns));
    cmd.addAll(List.of(command));
    return run(cmd);
  }

  /** Exit code of a command inside a namespace (for probes such as ping). */
  public static int status(String ns, String... command) {
    List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", ns));
    cmd.addAll(List.of(command));
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
          .start();
      return p.waitFor();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return -1;
    }
  }

  static String run(List<String> cmd) {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      int rc = p.waitFor();
      if (rc != 0) {
        throw new IllegalStateException(String.join(" ", cmd) + " exited " + rc + ": " + out.trim());
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted: " + cmd);
    }
  }

  /**
   * The unique id of a connection's established IKE SA with an installed CHILD SA, when
   * there is exactly one such (none while it is down, two while one replaces the other).
   */
  public static java.util.Optional<String> establishedIkeSaId(Charon charon, String conn) {
    List<String> ids = establishedIkeSaIds(charon, conn);
    return ids.size() == 1 ? java.util.Optional.of(ids.get(0)) : java.util.Optional.empty();
  }

  /**
   * Every established IKE SA of {@code conn} with an installed CHILD SA: two when both ends
   * initiated at once (the starting side at once, the other on its reconcile timer).
   */
  public static List<String> establishedIkeSaIds(Charon charon, String conn) {
    try (ViciSession s = charon.connect()) {
      return s.listSas(conn).stream()
          .map(sa -> sa.section(conn))
          .flatMap(java.util.Optional::stream)
          .filter(ike -> "ESTABLISHED".equals(ike.value("state").orElse("")))
          .filter(ike -> ike.section("child-sas").map(dev.ipseccni.tunnel.vici.ViciMessage::sections)
              .orElse(java.util.Map.of()).values().stream()
              .anyMatch(child -> "INSTALLED".equals(child.value("state").orElse(""))))
          .map(ike -> ike.value("uniqueid").orElse(""))
          .toList();
    } catch (IOException e) {
      return List.of();
    }
  }

  /** Two nodes of the tests: each a namespace with its charon. */
  public record TwoNodes(Charon a, Charon b) {}

  /**
   * The two-node setup the tunnel tests share: namespaces {@code <prefix>a} and
   * {@code <prefix>b} joined by a veth (192.168.250.1 and .2/24), a bridge "blk" in each
   * with the first address of its block (10.128.1.0/24, 10.128.2.0/24), a charon in each.
   */
  public TwoNodes twoNodes(String prefix) throws IOException {
    String nsA = namespace(prefix + "a");
    String nsB = namespace(prefix + "b");
    veth(nsA, "192.168.250.1/24", nsB, "192.168.250.2/24");
    bridge(nsA, "blk", "10.128.1.1/24");
    bridge(nsB, "blk", "10.128.2.1/24");
    return new TwoNodes(charon(nsA), charon(nsB));
  }

  /** Three nodes of the tests, on one underlay bridge. */
  public record ThreeNodes(Charon a, Charon b, Charon c) {}

  /**
   * Three nodes {@code <prefix>a}, {@code b}, {@code c} (192.168.250.1, .2, .3/24), each
   * with a veth to a bridge in the namespace {@code <prefix>u} (the underlay), a bridge "blk"
   * with the first address of its block (10.128.1-3.0/24) and a charon.
   */
  public ThreeNodes threeNodes(String prefix) throws IOException {
    String underlay = namespace(prefix + "u");
    exec(underlay, "ip", "link", "add", "br0", "type", "bridge");
    exec(underlay, "ip", "link", "set", "br0", "up");
    List<Charon> out = new ArrayList<>();
    for (int i = 1; i <= 3; i++) {
      String ns = namespace(prefix + (char) ('a' + i - 1));
      String node = "vt" + PID + "n" + i;
      String port = "vt" + PID + "u" + i;
      run(List.of("ip", "link", "add", node, "netns", ns, "type", "veth", "peer", "name", port, "netns", underlay));
      exec(ns, "ip", "addr", "add", "192.168.250." + i + "/24", "dev", node);
      exec(ns, "ip", "link", "set", node, "up");
      exec(underlay, "ip", "link", "set", port, "master", "br0");
      exec(underlay, "ip", "link", "set", port, "up");
      bridge(ns, "blk", "10.128." + i + ".1/24");
    }
    for (int i = 1; i <= 3; i++) {
      out.add(charon(PREFIX + PID + "-" + prefix + (char) ('a' + i - 1)));
    }
    return new ThreeNodes(out.get(0), out.get(1), out.get(2));
  }

  /** Polls {@code condition} until it holds or the deadline passes (then fails with {@code what}). */
  public static void awaitTrue(Duration within, BooleanSupplier condition, String what) {
    Instant deadline = Instant.now().plus(within);
    long pauseMillis = 20;
    while (!condition.getAsBoolean()) {
      if (Instant.now().isAfter(deadline)) {
        throw new AssertionError("timed out after " + within.toSeconds() + " s waiting for " + what);
      }
      // A poll interval between checks, not a synchronisation: the condition decides.
      java.util.concurrent.locks.LockSupport.parkNanos(pauseMillis * 1_000_000);
      pauseMillis = Math.min(pauseMillis * 2, 250);
    }
  }

  /** Removes namespaces (and their charons) left by earlier test JVMs that no longer run. */
  static void sweepStale() {
    for (String line : run(List.of("ip", "netns", "list")).split("\n")) {
      String name = line.split(" ")[0].trim();
      if (!name.startsWith(PREFIX)) {
        continue;
      }
      String[] parts = name.split("-");
      if (parts.length < 3) {
        continue;
      }
      long owner;
      try {
        owner = Long.parseLong(parts[1]);
      } catch (NumberFormatException e) {
        continue;
      }
      if (owner != PID && ProcessHandle.of(owner).isEmpty()) {
        removeNamespace(name);
      }
    }
  }

  private static void removeNamespace(String name) {
    try {
      for (String pid : run(List.of("ip", "netns", "pids", name)).split("\\s+")) {
        if (!pid.isBlank()) {
          ProcessHandle.of(Long.parseLong(pid.trim())).ifPresent(ProcessHandle::destroyForcibly);
        }
      }
    } catch (IllegalStateException ignored) {
      // namespace already half gone
    }
    try {
      run(List.of("ip", "netns", "del", name));
    } catch (IllegalStateException ignored) {
      // already gone
    }
    deleteTree(Path.of("/etc/netns", name));
  }

  @Override
  public void close() {
    charons.forEach(this::stop);
    namespaces.forEach(NetnsLab::removeNamespace);
    deleteTree(dir);
  }

  private static void deleteTree(Path root) {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // best effort
    }
  }
}

package dev.ipseccni.e2e;

import dev.ipseccni.tunnel.vici.ViciMessage;
import dev.ipseccni.tunnel.vici.ViciSession;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * What the tunnel tests look at on a lab node: charon's view over its VICI socket (the
 * data {@code swanctl --list-sas / --list-conns} prints), tcpdump captures of the node's
 * underlay interface, and long-running traffic (ping loops) in a pod or node namespace.
 */
final class TunnelLab {

  /** The pod address space: not one packet with such an address may cross the underlay in clear. */
  static final String CLUSTER_CIDR = "10.128.0.0/16";
  /** A UDP-encapsulated ESP packet (libipsec always encapsulates; NAT-T port). */
  static final String ESP_IN_UDP = "udp port 4500";
  static final Duration CHARON_ANSWERS = Duration.ofSeconds(30);

  private TunnelLab() {}

  /** The lab's namespace prefix, as the lab script reads it. */
  static String prefix() {
    return System.getenv().getOrDefault("LAB_PREFIX", "lab-");
  }

  // ------------------------------------------------------------------ charon over VICI

  /** One IKE SA as charon lists it, with its CHILD SA counters summed. */
  record IkeSa(String conn, String uniqueId, String state, long bytesIn, long bytesOut, long packetsIn,
               long packetsOut, int installedChildren) {}

  private static <T> T vici(LabHarness lab, int node, ViciCall<T> call) {
    Path socket = lab.nodeDir(node).resolve("charon.vici");
    try (ViciSession session = ViciSession.connect(socket, CHARON_ANSWERS)) {
      return call.apply(session);
    } catch (IOException e) {
      throw new AssertionError("node" + node + ": charon does not answer on " + socket + ": " + e.getMessage(), e);
    }
  }

  private interface ViciCall<T> {
    T apply(ViciSession session) throws IOException;
  }

  /** IKE SAs by connection name (peer-nodeN); one per connection is expected. */
  static Map<String, IkeSa> ikeSas(LabHarness lab, int node) {
    return vici(lab, node, s -> {
      Map<String, IkeSa> out = new TreeMap<>();
      for (ViciMessage event : s.listSas()) {
        event.sections().forEach((conn, ike) -> {
          long bi = 0, bo = 0, pi = 0, po = 0;
          int installed = 0;
          Map<String, ViciMessage> children = ike.section("child-sas").map(ViciMessage::sections).orElse(Map.of());
          for (ViciMessage child : children.values()) {
            bi += number(child, "bytes-in");
            bo += number(child, "bytes-out");
            pi += number(child, "packets-in");
            po += number(child, "packets-out");
            if ("INSTALLED".equals(child.value("state").orElse(""))) {
              installed++;
            }
          }
          IkeSa sa = new IkeSa(conn, ike.value("uniqueid").orElse("?"), ike.value("state").orElse("?"),
              bi, bo, pi, po, installed);
          // Two SAs for one connection (a rekey or a duplicate initiate): keep the established one.
          out.merge(conn, sa, (a, b) -> "ESTABLISHED".equals(a.state()) ? a : b);
        });
      }
      return out;
    });
  }

  private static long number(ViciMessage m, String key) {
    return m.value(key).map(Long::parseLong).orElse(0L);
  }

  static List<String> conns(LabHarness lab, int node) {
    return vici(lab, node, ViciSession::getConns);
  }

  /** Unique ids of the loaded shared keys (the tunnel service names them psk-peer-nodeN). */
  static List<String> sharedKeys(LabHarness lab, int node) {
    return vici(lab, node, ViciSession::getShared);
  }

  /** Established with an installed CHILD SA, on this node, for the connection to that peer. */
  static boolean tunnelUp(LabHarness lab, int node, int peer) {
    IkeSa sa = ikeSas(lab, node).get("peer-node" + peer);
    return sa != null && sa.state().equals("ESTABLISHED") && sa.installedChildren() > 0;
  }

  /** What swanctl prints, for failure messages. */
  static String swanctl(LabHarness lab, int node, String what) {
    LabHarness.Result r = lab.exec(String.valueOf(node), "swanctl", what);
    return "node" + node + " swanctl " + what + ":\n" + r.stdout() + r.stderr();
  }

  // ------------------------------------------------------------------ traffic

  static String podAddress(LabHarness lab, String pod) {
    return lab.lab("pod", "addr", pod).stdout().trim();
  }

  static boolean pingOnce(LabHarness lab, String where, String address) {
    return lab.exec(where, "ping", "-c", "1", "-W", "2", "-q", address).exitCode() == 0;
  }

  /** A TCP answer: the file the pod's busybox httpd serves, or null. */
  static String httpGet(LabHarness lab, String where, String address, String file) {
    LabHarness.Result r = lab.exec(where, "curl", "-s", "-f", "-m", "5", "http://" + address + ":8080/" + file);
    return r.exitCode() == 0 ? r.stdout().trim() : null;
  }

  /** A TCP server in the pod (busybox httpd, daemonised) serving NAME.txt that says its name. */
  static void serveName(LabHarness lab, String pod) throws IOException {
    Path www = lab.labDir().resolve("www-" + pod);
    Files.createDirectories(www);
    Files.writeString(www.resolve(pod + ".txt"), "pod " + pod + "\n");
    lab.exec("pod-" + pod, "busybox", "httpd", "-p", "8080", "-h", www.toString()).orFail("httpd in pod " + pod);
  }

  /**
   * A command running in the background in a lab namespace (a ping loop, tcpdump); its
   * output goes to files. {@link #stop()} sends SIGTERM (ip netns exec execs the command,
   * so the process is the command itself) and waits.
   */
  static final class Background implements AutoCloseable {
    private final Process process;
    private final Path out;
    private final Path err;
    private final String what;

    private Background(Process process, Path out, Path err, String what) {
      this.process = process;
      this.out = out;
      this.err = err;
      this.what = what;
    }

    static Background start(LabHarness lab, String where, String... command) throws IOException {
      List<String> args = new ArrayList<>(List.of(lab.repoRoot().resolve("scripts/lab").toString(), "exec", where));
      args.addAll(List.of(command));
      Path out = Files.createTempFile("lab-bg", ".out");
      Path err = Files.createTempFile("lab-bg", ".err");
      Process p = new ProcessBuilder(args).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
          .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
      return new Background(p, out, err, where + ": " + String.join(" ", command));
    }

    String stdout() throws IOException {
      return Files.readString(out, StandardCharsets.UTF_8);
    }

    String stderr() throws IOException {
      return Files.readString(err, StandardCharsets.UTF_8);
    }

    boolean alive() {
      return process.isAlive();
    }

    /** Waits for the command to end by itself (e.g. ping -w); returns its exit status. */
    int await(Duration deadline) throws InterruptedException {
      if (!process.waitFor(deadline.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new AssertionError(what + " still running after " + deadline.toSeconds() + " s");
      }
      return process.exitValue();
    }

    void stop() throws InterruptedException {
      if (process.isAlive()) {
        process.destroy();
        if (!process.waitFor(20, TimeUnit.SECONDS)) {
          process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
      }
    }

    @Override
    public void close() throws Exception {
      stop();
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
    }
  }

  /**
   * A tcpdump into a pcap file: of one node's underlay interface (eth0 in the node namespace), or
   * of the underlay bridge itself (every node's traffic, seen from the wire).
   */
  static final class UnderlayCapture implements AutoCloseable {
    private static final String ROUTER_UNDERLAY = "192.0.2.1";
    private static final int MARKER_PORT = 9;

    private final LabHarness lab;
    private final Background tcpdump;
    private final Path pcap;
    private final String where;
    /** The node that sends the marker datagram: the captured node, or node 1 for the bridge. */
    private final String markerNode;

    private UnderlayCapture(LabHarness lab, Background tcpdump, Path pcap, String where, String markerNode) {
      this.lab = lab;
      this.tcpdump = tcpdump;
      this.pcap = pcap;
      this.where = where;
      this.markerNode = markerNode;
    }

    /** Starts the capture on node's eth0 and returns once tcpdump is listening. */
    static UnderlayCapture start(LabHarness lab, int node, String name) throws IOException {
      Path pcap = lab.labDir().resolve("capture-node" + node + "-" + name + ".pcap");
      return start(lab, String.valueOf(node), "eth0", pcap, "node" + node + " eth0", String.valueOf(node));
    }

    /** Starts a capture on the underlay bridge (in the underlay namespace) and returns once it listens. */
    static UnderlayCapture bridge(LabHarness lab, String name) throws IOException {
      Path pcap = lab.labDir().resolve("capture-bridge-" + name + ".pcap");
      return start(lab, "underlay", prefix() + "br0", pcap, "the underlay bridge " + prefix() + "br0", "1");
    }

    private static UnderlayCapture start(LabHarness lab, String where, String iface, Path pcap, String what,
                                         String markerNode) throws IOException {
      // --immediate-mode: packets are handed to tcpdump as they arrive, not in ring-buffer
      // blocks that the kernel retires only when full or after a timeout.
      Background b = Background.start(lab, where, "tcpdump", "-i", iface, "-n", "-U", "--immediate-mode",
          "-s", "128", "-w", pcap.toString());
      LabHarness.await(Duration.ofSeconds(60), "tcpdump listening on " + what, () -> {
        try {
          if (!b.alive()) {
            throw new AssertionError("tcpdump on " + what + " exited: " + b.stderr());
          }
          return b.stderr().contains("listening on");
        } catch (IOException e) {
          throw new AssertionError(e);
        }
      });
      return new UnderlayCapture(lab, b, pcap, what, markerNode);
    }

    /**
     * Stops the capture once the file holds everything sent before this call: a marker
     * datagram from the node (node 1 for the bridge) to the router goes out last, and tcpdump
     * is stopped only when the file shows it (packets reach the file in order). Stopping tcpdump at once lost what it had
     * not yet read from the kernel: under load a capture held no ESP at all.
     */
    void stop() throws InterruptedException {
      if (!tcpdump.alive()) {
        return;
      }
      LabHarness.await(Duration.ofSeconds(60), "the " + describe() + " to show node" + markerNode
          + "'s marker datagram", () -> {
        lab.lab("exec", markerNode, "bash", "-c", "echo capture-marker >/dev/udp/" + ROUTER_UNDERLAY + "/" + MARKER_PORT);
        try {
          return !packets("udp and dst host " + ROUTER_UNDERLAY + " and dst port " + MARKER_PORT).isEmpty();
        } catch (IOException e) {
          throw new AssertionError(e);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new AssertionError(e);
        }
      });
      tcpdump.stop();
    }

    /** Packets of the capture that match a tcpdump filter, one line each. */
    List<String> packets(String filter) throws IOException, InterruptedException {
      Process p = new ProcessBuilder("tcpdump", "-r", pcap.toString(), "-n", filter).redirectErrorStream(false)
          .redirectError(ProcessBuilder.Redirect.DISCARD).start();
      String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new AssertionError("tcpdump -r " + pcap + " '" + filter + "' failed");
      }
      return text.lines().toList();
    }

    String describe() {
      return "capture on " + where + " (" + pcap + ")";
    }

    @Override
    public void close() throws Exception {
      tcpdump.close();
    }
  }
}

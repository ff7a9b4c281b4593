package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Members found by DNS ({@code cluster.discovery.dns}, Hazelcast's Kubernetes discovery in
 * DNS-lookup mode) against a real DNS server: dnsmasq in a namespace of its own on the underlay,
 * answering the headless Service's name with the nodes' addresses. Each node's resolver points
 * at it ({@code LAB_RESOLV_CONF}, bind-mounted by {@code ip netns exec}). dnsmasq re-reads its
 * hosts directory when a file in it changes, so the test edits the answer as a Kubernetes
 * endpoint controller would.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DnsDiscoveryTest {

  private static final Duration JOIN = Duration.ofMinutes(3);
  private static final String SERVICE = "ipsec-cni.kube-system.svc.cluster.local";
  private static final String DNS_NS = CniLab.PREFIX + "dns";
  private static final String DNS_ADDRESS = "192.0.2.53";

  private LabHarness lab;
  private Path work;
  private Path hostsDir;
  private Process dnsmasq;
  private Map<String, String> env;

  @BeforeAll
  void up() throws IOException {
    assertTrue(Files.isExecutable(Path.of("/usr/sbin/dnsmasq")), "no /usr/sbin/dnsmasq (scripts/install-deps)");
    lab = new LabHarness();
    work = Files.createTempDirectory("dns-discovery");
    hostsDir = Files.createDirectories(work.resolve("hosts"));
    Path resolv = work.resolve("resolv.conf");
    Files.writeString(resolv, "nameserver " + DNS_ADDRESS + "\noptions timeout:1 attempts:2\n");
    env = Map.of("LAB_RESOLV_CONF", resolv.toString(), "LAB_AGENT_CONFIG_EXTRA",
        "{\"cluster\":{\"members\":null,\"expectedMembers\":3,\"discovery\":{\"dns\":\"" + SERVICE + "\"}}}");
    lab.lab(env, "up", "3", "--no-agent");
    startDnsServer();
    list(1, 2, 3);
  }

  @AfterAll
  void down() throws Exception {
    if (dnsmasq != null) {
      dnsmasq.destroy();
      dnsmasq.waitFor();
    }
    if (lab != null) {
      lab.close();
    }
    if (work != null) {
      try (var files = Files.walk(work)) {
        for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.delete(f);
        }
      }
    }
  }

  /** dnsmasq on 192.0.2.53 in its own namespace, wired to the underlay bridge; no other data. */
  private void startDnsServer() throws IOException {
    String underlay = CniLab.PREFIX + "underlay";
    run("ip", "netns", "add", DNS_NS);
    run("ip", "-n", DNS_NS, "link", "set", "lo", "up");
    run("ip", "-n", underlay, "link", "add", "dns", "type", "veth", "peer", "name", "eth0", "netns", DNS_NS);
    run("ip", "-n", underlay, "link", "set", "dns", "master", CniLab.PREFIX + "br0", "up");
    run("ip", "-n", DNS_NS, "addr", "add", DNS_ADDRESS + "/24", "dev", "eth0");
    run("ip", "-n", DNS_NS, "link", "set", "eth0", "up");
    // nsenter execs dnsmasq, so this process is dnsmasq itself and destroy() ends it
    dnsmasq = new ProcessBuilder("nsenter", "--net=/run/netns/" + DNS_NS, "/usr/sbin/dnsmasq", "--keep-in-foreground",
        "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--hostsdir=" + hostsDir, "--user=root",
        "--listen-address=" + DNS_ADDRESS, "--bind-interfaces", "--pid-file=", "--log-facility=-")
        .redirectErrorStream(true).redirectOutput(hostsDir.getParent().resolve("dnsmasq.log").toFile()).start();
  }

  /** What the headless Service's name resolves to from now on: these nodes' addresses. */
  private void list(int... nodes) throws IOException {
    StringBuilder hosts = new StringBuilder();
    for (int n : nodes) {
      hosts.append(LabHarness.address(n)).append(' ').append(SERVICE).append('\n');
    }
    // written beside, then renamed: dnsmasq never reads half a file
    Path temp = hostsDir.getParent().resolve("service.tmp");
    Files.writeString(temp, hosts);
    Files.move(temp, hostsDir.resolve("service"), java.nio.file.StandardCopyOption.ATOMIC_MOVE,
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    List<String> want = new ArrayList<>();
    for (int n : nodes) {
      want.add(LabHarness.address(n));
    }
    LabHarness.await(JOIN, "the DNS server answers " + want, () -> resolved().equals(new TreeSet<>(want)));
  }

  /** The name as node1's resolver answers it (node1's namespace, its resolv.conf). */
  private TreeSet<String> resolved() {
    LabHarness.Result r = lab.exec("1", "getent", "ahostsv4", SERVICE);
    TreeSet<String> out = new TreeSet<>();
    r.stdout().lines().map(l -> l.split("\\s+")[0]).filter(a -> !a.isEmpty()).forEach(out::add);
    return out;
  }

  private void awaitMembers(int node, List<String> names) {
    lab.awaitState(node, JOIN, "members " + names, s -> LabHarness.members(s).equals(names));
  }

  @Test
  void nodesJoinThroughDnsLaterNodesTooAndAVanishedAddressStallsNobody() throws IOException {
    for (int n = 1; n <= 3; n++) {
      lab.lab("start-agent", String.valueOf(n));
    }
    List<String> three = List.of("node1", "node2", "node3");
    for (int n = 1; n <= 3; n++) {
      awaitMembers(n, three);
    }
    String first = lab.lab("pod", "add", "1", "dns-a").stdout();
    assertTrue(CniLab.address(LabHarness.JSON.readTree(first)).startsWith("10.128.1."), first);

    // A node listed later: the running ones never heard of it; it finds them by the name.
    list(1, 2, 3, 4);
    lab.lab(env, "add-node");
    List<String> four = List.of("node1", "node2", "node3", "node4");
    for (int n = 1; n <= 4; n++) {
      awaitMembers(n, four);
    }

    // node2 is powered off, its address still listed (a stale answer), then dropped from DNS.
    lab.lab("poweroff", "2");
    List<String> withoutTwo = List.of("node1", "node3", "node4");
    awaitMembers(1, withoutTwo);
    list(1, 2, 3, 4, 5);
    lab.lab(env, "add-node");
    List<String> five = List.of("node1", "node3", "node4", "node5");
    awaitMembers(5, five);
    list(1, 3, 4, 5, 6);
    lab.lab(env, "add-node");
    List<String> six = List.of("node1", "node3", "node4", "node5", "node6");
    for (int n : new int[] {1, 3, 4, 5, 6}) {
      awaitMembers(n, six);
    }
    // the others kept working: a new pod on a node that joined by DNS, reaching node1's pod
    String late = lab.lab("pod", "add", "6", "dns-b").stdout();
    assertTrue(CniLab.address(LabHarness.JSON.readTree(late)).startsWith("10.128.6."), late);
    String target = CniLab.address(LabHarness.JSON.readTree(first)).split("/")[0];
    LabHarness.await(JOIN, "pod on node6 -> pod on node1 through the tunnel",
        () -> lab.exec("pod-dns-b", "ping", "-c", "1", "-W", "2", target).exitCode() == 0);
    assertEquals("0", lab.lab("leaks").stdout().trim(), "nothing crossed the underlay in plaintext");
  }

  private void run(String... command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes());
      if (p.waitFor() != 0) {
        throw new AssertionError(String.join(" ", command) + " failed: " + out);
      }
    } catch (IOException e) {
      throw new AssertionError("cannot run " + String.join(" ", command), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}

package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A real libcni runtime drives our plugin: podman 4.3 (CNI backend, runc) on lab node 1,
 * with a network whose conflist is the one node 1's agent wrote. No registry: the
 * container's root is a directory holding busybox and the libraries it links.
 *
 * <p>podman runs under {@code nsenter --net} rather than {@code ip netns exec}: the latter
 * remounts /sys for the namespace, which hides the cgroup mounts runc needs.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RuntimeTest {

  private static final Duration TUNNEL = Duration.ofMinutes(3);
  private static final String CONTAINER = CniLab.PREFIX + "rt";
  private static final String WEB = CniLab.PREFIX + "web";
  private static final String WEB_TWIN = CniLab.PREFIX + "web2";
  private static final int HOST_PORT = 8080;

  private LabHarness lab;
  private CniLab cni;
  private Path podman;

  @BeforeAll
  void up() throws IOException {
    assertTrue(Files.isExecutable(Path.of("/usr/bin/podman")) && Files.isExecutable(Path.of("/usr/sbin/runc")),
        "podman and runc are not installed (scripts/install-deps)");
    lab = new LabHarness();
    cni = new CniLab(lab);
    cni.up(2, "{}");
    podman = lab.labDir().resolve("podman");
    preparePodman(cni.conflist(1));
  }

  @AfterAll
  void down() {
    if (lab != null) {
      for (String c : List.of(CONTAINER, WEB, WEB_TWIN)) {
        podman("rm", "-f", "-t", "0", c);
      }
      lab.close();
    }
  }

  /** containers.conf, the network directory holding node 1's conflist, and a busybox root. */
  private void preparePodman(JsonNode conflist) throws IOException {
    Path net = Files.createDirectories(podman.resolve("net.d"));
    Files.writeString(net.resolve("10-ipsec-cni.conflist"), conflist.toPrettyString());
    Files.writeString(podman.resolve("containers.conf"), String.join("\n",
        "[network]",
        "network_backend = \"cni\"",
        "cni_plugin_dirs = [\"" + cni.plugin.getParent() + "\", \"/usr/lib/cni\"]",
        "network_config_dir = \"" + net + "\"",
        "[engine]",
        "runtime = \"runc\"",
        "cgroup_manager = \"cgroupfs\"",
        "events_logger = \"file\"",
        "events_logfile_path = \"" + podman.resolve("events.log") + "\"",
        ""));
    Path rootfs = podman.resolve("rootfs");
    for (String dir : List.of("bin", "proc", "sys", "dev", "etc", "tmp", "run")) {
      Files.createDirectories(rootfs.resolve(dir));
    }
    Files.copy(Path.of("/usr/bin/busybox"), rootfs.resolve("bin/busybox"));
    String ldd = run(List.of("ldd", "/usr/bin/busybox")).stdout();
    for (String word : ldd.split("\\s+")) {
      if (word.startsWith("/")) {
        Path target = rootfs.resolve(word.substring(1));
        Files.createDirectories(target.getParent());
        Files.copy(Path.of(word).toRealPath(), target);
      }
    }
    for (String applet : List.of("sh", "sleep", "ping", "ip", "cat", "mkdir", "httpd")) {
      Files.createSymbolicLink(rootfs.resolve("bin").resolve(applet), Path.of("busybox"));
    }
  }

  private LabHarness.Result podman(String... args) {
    List<String> command = new ArrayList<>(List.of("nsenter", "--net=/run/netns/" + CniLab.PREFIX + "node1",
        "podman", "--root", podman.resolve("root").toString(), "--runroot", podman.resolve("runroot").toString()));
    command.addAll(List.of(args));
    return run(command);
  }

  @Test
  void podmanContainerGetsAnAddressOfTheNodesBlockReachesARemotePodAndIsDeletedOnRm() {
    String peer = lab.lab("pod", "add", "2", "peer").stdout();
    String peerAddress = CniLab.address(parse(peer)).split("/")[0];
    assertTrue(peerAddress.startsWith("10.128.2."), peer);

    String id = podman("run", "-d", "--name", CONTAINER, "--ulimit", "nofile=1024:1024", "--ulimit",
        "nproc=1024:1024", "--network", "ipsec-cni", "--rootfs", podman.resolve("rootfs").toString(),
        "/bin/sleep", "600").orFail("podman run").stdout().strip();
    // podman's CNI_CONTAINERID is the container id: the agent's pod list must show it
    JsonNode pod = lab.awaitState(1, TUNNEL, "the container in node1's pods", s -> find(s, id).isPresent());
    String address = find(pod, id).orElseThrow().path("address").asText();
    assertTrue(address.startsWith("10.128.1."), address);
    assertEquals(Map.of(id + "/eth0", address), cni.allocations(1));
    String inContainer = podman("exec", CONTAINER, "ip", "-4", "-o", "addr", "show", "eth0").orFail("ip addr").stdout();
    assertTrue(inContainer.contains(address), inContainer);

    LabHarness.await(TUNNEL, "container on node1 -> pod on node2 through the tunnel",
        () -> podman("exec", CONTAINER, "ping", "-c", "1", "-W", "2", peerAddress).exitCode() == 0);
    assertEquals("0", lab.lab("leaks").stdout().trim(), "nothing crossed the underlay in plaintext");

    podman("rm", "-f", "-t", "0", CONTAINER).orFail("podman rm");
    assertEquals(Map.of(), cni.allocations(1), "DEL on rm released the address");
    assertEquals(List.of(), cni.veths(1), "DEL on rm removed the veth");
    JsonNode after = lab.state(1).orElseThrow();
    assertFalse(find(after, id).isPresent(), "the container left node1's pods: " + after.path("pods"));
  }

  /**
   * hostPort through the conflist's chained portmap: podman {@code -p} sends portMappings, portmap
   * writes the DNAT rules from our result, and the port answers at node1's underlay address.
   */
  @Test
  void hostPortAnswersAtTheNodeAddressSurvivesDriftRepairAndGoesWithRm() throws Exception {
    String peer = lab.lab("pod", "add", "2", "webclient").stdout();
    assertTrue(CniLab.address(parse(peer)).startsWith("10.128.2."), peer);
    String node1 = LabHarness.address(1);
    String id = podman("run", "-d", "--name", WEB, "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
        "--network", "ipsec-cni", "-p", HOST_PORT + ":80", "--rootfs", podman.resolve("rootfs").toString(),
        "/bin/sh", "-c", "mkdir -p /tmp/w && echo hostport-ok > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w")
        .orFail("podman run -p").stdout().strip();
    JsonNode pod = lab.awaitState(1, TUNNEL, "the web container in node1's pods", s -> find(s, id).isPresent());
    String cidr = find(pod, id).orElseThrow().path("address").asText();
    String address = cidr.split("/")[0];
    String nat = natRules();
    assertTrue(nat.contains("--to-destination " + address + ":80"), "portmap's DNAT to the container:\n" + nat);

    String url = "http://" + node1 + ":" + HOST_PORT + "/";
    // node1's port on the underlay (the router's counters see only what is routed, and a
    // capture on the bridge itself misses unicast forwarded between its ports).
    Path pcap = podman.resolve("underlay.pcap");
    Process capture = startCapture(pcap, "net 10.128.0.0/16 or tcp port " + HOST_PORT);
    try {
      LabHarness.await(TUNNEL, "node1's hostPort from a pod on node2", () -> fetch("pod-webclient", url));
    } finally {
      capture.destroy();
      capture.waitFor();
    }
    assertTrue(!read(pcap, "tcp port " + HOST_PORT).isBlank(), "the capture saw the hostPort hop on the underlay: "
        + Files.readString(podman.resolve("tcpdump.log")));
    assertEquals("", read(pcap, "net 10.128.0.0/16"), "a pod address crossed the underlay in clear");
    LabHarness.await(TUNNEL, "node1's hostPort from the outside host", () -> fetch("outside", url));
    // node1's cni0 address lies in its block: that way the remote pod's request rides the tunnel
    String gateway = "http://" + address.substring(0, address.lastIndexOf('.')) + ".1:" + HOST_PORT + "/";
    LabHarness.await(TUNNEL, "node1's hostPort on its cni0 address from a pod on node2, through the tunnel",
        () -> fetch("pod-webclient", gateway));
    assertEquals("0", lab.lab("leaks").stdout().trim(), "no pod address crossed the underlay in plaintext");

    // Drift: our forward chain emptied; the firewall restores it and leaves portmap's chains as they are.
    lab.exec("1", "iptables", "-w", "-F", "IPSEC-CNI-FWD").orFail("flush IPSEC-CNI-FWD");
    LabHarness.await(TUNNEL, "node1's firewall restored IPSEC-CNI-FWD",
        () -> lab.exec("1", "iptables", "-w", "-S", "IPSEC-CNI-FWD").stdout().contains("plaintext guard"));
    String natAfterRepair = natRules();
    for (String kept : nat.lines().filter(l -> l.contains("CNI-HOSTPORT") || l.contains("CNI-DN-")).toList()) {
      assertTrue(natAfterRepair.contains(kept), "drift repair kept portmap's rule " + kept + ":\n" + natAfterRepair);
    }
    LabHarness.await(TUNNEL, "hostPort from the outside host after drift repair", () -> fetch("outside", url));
    LabHarness.await(TUNNEL, "hostPort through the tunnel after drift repair", () -> fetch("pod-webclient", gateway));
    JsonNode state = lab.state(1).orElseThrow();
    for (JsonNode drift : LabHarness.events(state, "firewall.drift")) {
      assertFalse(drift.toString().contains("not repaired"), "our firewall and portmap fought: " + drift);
    }
    assertEquals("0", lab.lab("leaks").stdout().trim(), "no pod address crossed the underlay in plaintext");

    // The same host port twice on one node: refused with the reason, nothing left allocated for it.
    LabHarness.Result twin = podman("run", "-d", "--name", WEB_TWIN, "--ulimit", "nofile=1024:1024", "--ulimit",
        "nproc=1024:1024", "--network", "ipsec-cni", "-p", HOST_PORT + ":80", "--rootfs",
        podman.resolve("rootfs").toString(), "/bin/sleep", "600");
    assertTrue(twin.exitCode() != 0, "a second container on host port " + HOST_PORT + " started: " + twin.stdout());
    assertTrue(twin.stderr().contains(String.valueOf(HOST_PORT)) && twin.stderr().contains("address already in use"),
        "the error names the port and the reason: " + twin.stderr());
    assertEquals(Map.of(id + "/eth0", cidr), cni.allocations(1),
        "only the first container holds an address");
    assertTrue(fetch("outside", url), "the first container still answers on the port");

    podman("rm", "-f", "-t", "0", WEB).orFail("podman rm");
    String natAfterRm = natRules();
    assertFalse(natAfterRm.contains(address + ":80") || natAfterRm.contains(":CNI-DN-"),
        "DEL removed portmap's DNAT rules and chain:\n" + natAfterRm);
    assertFalse(fetch("outside", url), "the port no longer answers once the container is gone");
    podman("rm", "-f", "-t", "0", WEB_TWIN);
    lab.lab("pod", "del", "webclient");
  }

  /** tcpdump on node1's port of the underlay bridge into pcap, once it is listening. */
  private Process startCapture(Path pcap, String filter) throws IOException {
    Path log = podman.resolve("tcpdump.log");
    // nsenter execs tcpdump (ip netns exec would fork): the signal that ends it reaches it, and
    // --immediate-mode hands over each packet at once, so none is lost when it ends. n1 is the
    // lab's name for node1's port on the bridge.
    Process p = new ProcessBuilder("nsenter", "--net=/run/netns/" + CniLab.PREFIX + "underlay", "tcpdump", "-i", "n1",
        "-n", "-U", "--immediate-mode", "-Z", "root", "-w", pcap.toString(), filter)
        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    LabHarness.await(Duration.ofSeconds(30), "tcpdump listening on the underlay", () -> {
      try {
        return Files.readString(log).contains("listening on");
      } catch (IOException e) {
        return false;
      }
    });
    return p;
  }

  /** The packets of pcap that match filter, one a line. */
  private String read(Path pcap, String filter) {
    LabHarness.Result r = cni.run(List.of("tcpdump", "-n", "-r", pcap.toString(), filter))
        .orFail("tcpdump -r " + pcap);
    return r.stdout().strip();
  }

  private String natRules() {
    return lab.exec("1", "iptables-save", "-t", "nat").orFail("iptables-save in node1").stdout();
  }

  private boolean fetch(String where, String url) {
    LabHarness.Result r = lab.exec(where, "curl", "-s", "-f", "-m", "3", url);
    return r.exitCode() == 0 && r.stdout().contains("hostport-ok");
  }

  private static Optional<JsonNode> find(JsonNode state, String containerId) {
    for (JsonNode p : state.path("pods")) {
      if (p.path("containerId").asText().equals(containerId)) {
        return Optional.of(p);
      }
    }
    return Optional.empty();
  }

  private static JsonNode parse(String json) {
    try {
      return LabHarness.JSON.readTree(json);
    } catch (IOException e) {
      throw new AssertionError("not JSON: " + json, e);
    }
  }

  private LabHarness.Result run(List<String> command) {
    Path conf = podman.resolve("containers.conf");
    List<String> withConf = new ArrayList<>(List.of("env", "CONTAINERS_CONF=" + conf));
    withConf.addAll(command);
    return cni.run(withConf);
  }
}

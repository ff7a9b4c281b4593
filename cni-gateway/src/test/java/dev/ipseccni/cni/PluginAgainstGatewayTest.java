package dev.ipseccni.cni;

import static dev.ipseccni.cni.PluginClient.env;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.PodEvent;
import dev.ipseccni.cni.plugin.PluginCall;
import dev.ipseccni.cni.plugin.PluginProtocol;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Both plugin binaries, executed as a runtime executes them, against a running gateway
 * whose datapath is the real reference bridge plugin inside a node namespace. IPAM is the
 * in-test responder ({@link InTestIpam}).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PluginAgainstGatewayTest {
  static final String NODE = "cg-node-1";
  static final String NETWORK = "ipsec-cni";
  static final String CNI_PATH = "/usr/lib/cni";

  NetnsLab lab;
  Vertx vertx;
  InTestIpam ipam;
  Path dir;
  Path socket;
  CniGatewaySettings settings;
  CniGateway gateway;
  String deployment;
  final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
  int pods;
  /** What this test's stand-in tunnel service says when asked for its status. */
  volatile boolean tunnelReady = true;

  @BeforeAll
  void startNode() throws Exception {
    lab = new NetnsLab();
    new NodeBridge("cni0", lab.inNode()).ensure(InTestIpam.GATEWAY + "/24", 1400);
    dir = Files.createTempDirectory("cg-gw");
    socket = dir.resolve("run").resolve("cni.sock");
    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
    ipam = new InTestIpam();
    await(ipam.register(vertx, NODE));
    await(vertx.eventBus().consumer(Addresses.nodeStatus(NODE, Addresses.TUNNEL), m -> m.reply(tunnelReady
        ? ComponentStatus.ready(Addresses.TUNNEL) : ComponentStatus.notReady(Addresses.TUNNEL, "charon not answering")))
        .completion());
    await(vertx.eventBus().<Event>consumer(Addresses.POD_ADDED, m -> events.add(m.body())).completion());
    await(vertx.eventBus().<Event>consumer(Addresses.POD_DELETED, m -> events.add(m.body())).completion());
    settings = new CniGatewaySettings(NODE, socket, NETWORK, "cni0", 1400, PluginProtocol.pendingDelDir(socket),
        PluginProtocol.SUPPORTED_VERSIONS, List.of(Addresses.IPAM, Addresses.TUNNEL), lab.inNode(), Duration.ofSeconds(5),
        Duration.ofHours(1));
    startGateway();
  }

  void startGateway() {
    gateway = new CniGateway(settings, new EventPublisher(vertx.eventBus(), NODE, 1));
    deployment = await(vertx.deployVerticle(gateway));
  }

  void stopGateway() {
    await(vertx.undeploy(deployment));
  }

  @AfterAll
  void stopNode() {
    if (vertx != null) {
      await(vertx.close());
    }
    if (lab != null) {
      lab.close();
    }
    if (dir != null) {
      try (Stream<Path> files = Files.walk(dir)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
      } catch (IOException e) {
        // a temp dir left behind is harmless
      }
    }
  }

  @BeforeEach
  void readyAndQuiet() {
    ipam.ready = true;
    tunnelReady = true;
    events.clear();
  }

  // ---- helpers ----

  static <T> T await(Future<T> future) {
    try {
      return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("future failed: " + e, e);
    }
  }

  String conf(String version) {
    return new JsonObject().put("cniVersion", version).put("name", NETWORK).put("type", "ipsec-cni")
        .put(PluginProtocol.SOCKET_KEY, socket.toString()).put("mtu", 1400).encode();
  }

  String confWithPrev(String version, JsonObject prevResult) {
    return new JsonObject(conf(version)).put("prevResult", prevResult).encode();
  }

  record Pod(String id, String netns, String name) {}

  Pod newPod(PluginClient client) {
    String name = "pod" + (++pods) + "-" + client.name().toLowerCase();
    return new Pod("ctr-" + name, lab.pod(name), NetnsLab.PREFIX + name);
  }

  Map<String, String> cniEnv(String command, Pod pod) {
    return env("CNI_COMMAND", command, "CNI_CONTAINERID", pod.id(), "CNI_NETNS", pod.netns(), "CNI_IFNAME", "eth0",
        "CNI_PATH", CNI_PATH, "CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=" + pod.name());
  }

  /** The next event of this kind about this container; events about other pods are passed over. */
  PodEvent nextEvent(String address, Pod pod) throws InterruptedException {
    while (true) {
      Event event = events.poll(10, TimeUnit.SECONDS);
      assertNotNull(event, "no " + address + " event for " + pod.id());
      if (event.address().equals(address) && ((PodEvent) event.payload()).containerId().equals(pod.id())) {
        return (PodEvent) event.payload();
      }
    }
  }

  static boolean podHasInterface(Pod pod, String ifName) {
    return NetnsLab.run("ip", "-n", pod.name(), "link", "show", "dev", ifName) == 0;
  }

  // ---- the commands ----

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void versionIsAnsweredWithoutTheAgent(PluginClient client) {
    String stdin = "{\"cniVersion\":\"0.4.0\",\"agentSocket\":\"" + dir.resolve("nobody-here.sock") + "\"}";
    PluginClient.Run run = client.run(env("CNI_COMMAND", "VERSION", "CNI_NETNS", "dummy", "CNI_IFNAME", "dummy",
        "CNI_PATH", "dummy"), stdin);
    assertEquals(0, run.exitCode(), run.stdout());
    assertEquals("0.4.0", run.json().getString("cniVersion"));
    assertEquals(new JsonArray(PluginProtocol.SUPPORTED_VERSIONS), run.json().getJsonArray("supportedVersions"));
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void addGivesThePodAnAddressThatReachesTheGatewayAndCheckAndDelFollowIt(PluginClient client) throws Exception {
    Pod pod = newPod(client);
    PluginClient.Run add = client.run(cniEnv("ADD", pod), conf("1.0.0"));
    assertEquals(0, add.exitCode(), add.stdout());
    JsonObject result = add.json();
    assertEquals("1.0.0", result.getString("cniVersion"));
    JsonObject ip = result.getJsonArray("ips").getJsonObject(0);
    String address = ip.getString("address");
    assertTrue(address.startsWith("10.128.1.") && address.endsWith("/24"), address);
    assertEquals(InTestIpam.GATEWAY, ip.getString("gateway"));
    JsonObject podSide = result.getJsonArray("interfaces").getJsonObject(ip.getInteger("interface"));
    assertEquals("eth0", podSide.getString("name"));
    assertEquals(pod.netns(), podSide.getString("sandbox"));
    assertTrue(NetnsLab.sh("ip", "-n", pod.name(), "-o", "addr", "show", "dev", "eth0").contains(address));
    assertEquals(0, NetnsLab.run("ip", "netns", "exec", pod.name(), "ping", "-c", "1", "-W", "3",
        InTestIpam.GATEWAY), "pod cannot ping the gateway");
    PodEvent added = nextEvent(Addresses.POD_ADDED, pod);
    assertEquals(new PodEvent(NETWORK, pod.id(), "eth0", "shop", pod.name(), address), added);

    PluginClient.Run check = client.run(cniEnv("CHECK", pod), confWithPrev("1.0.0", result));
    assertEquals(0, check.exitCode(), check.stdout());
    assertEquals("", check.stdout());

    NetnsLab.must("ip", "-n", pod.name(), "link", "delete", "eth0");
    PluginClient.Run broken = client.run(cniEnv("CHECK", pod), confWithPrev("1.0.0", result));
    assertNotEquals(0, broken.exitCode());
    assertEquals(CniError.DATAPATH_FAILED, broken.json().getInteger("code"), broken.stdout());

    PluginClient.Run del = client.run(cniEnv("DEL", pod), confWithPrev("1.0.0", result));
    assertEquals(0, del.exitCode(), del.stdout());
    assertEquals("", del.stdout());
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"));
    assertEquals(address, nextEvent(Addresses.POD_DELETED, pod).address());
    PluginClient.Run again = client.run(cniEnv("DEL", pod), conf("1.0.0"));
    assertEquals(0, again.exitCode(), "a repeated DEL succeeds: " + again.stdout());
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void delRemovesThePodInterfaceAndItsHostVeth(PluginClient client) {
    Pod pod = newPod(client);
    PluginClient.Run add = client.run(cniEnv("ADD", pod), conf("1.0.0"));
    assertEquals(0, add.exitCode(), add.stdout());
    String hostVeth = add.json().getJsonArray("interfaces").getJsonObject(1).getString("name");
    assertEquals(0, NetnsLab.run("ip", "-n", lab.node, "link", "show", "dev", hostVeth));

    // containerd sends DEL with an empty CNI_NETNS: the address must still come back.
    Map<String, String> delEnv = cniEnv("DEL", pod);
    PluginClient.Run del = client.run(delEnv, conf("1.0.0"));
    assertEquals(0, del.exitCode(), del.stdout());
    assertFalse(podHasInterface(pod, "eth0"));
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"));
    assertNotEquals(0, NetnsLab.run("ip", "-n", lab.node, "link", "show", "dev", hostVeth), "host veth left behind");
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void delWithEmptyNetnsReleasesTheAddress(PluginClient client) {
    Pod pod = newPod(client);
    assertEquals(0, client.run(cniEnv("ADD", pod), conf("1.0.0")).exitCode());
    Map<String, String> delEnv = cniEnv("DEL", pod);
    delEnv.put("CNI_NETNS", "");
    PluginClient.Run del = client.run(delEnv, conf("1.0.0"));
    assertEquals(0, del.exitCode(), del.stdout());
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"));
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void addOfAnExistingInterfaceFailsAndLeavesThePodAlone(PluginClient client) {
    Pod pod = newPod(client);
    assertEquals(0, client.run(cniEnv("ADD", pod), conf("1.0.0")).exitCode());
    PluginClient.Run second = client.run(cniEnv("ADD", pod), conf("1.0.0"));
    assertEquals(CniError.INTERFACE_EXISTS, second.json().getInteger("code"), second.stdout());
    assertNotEquals(0, second.exitCode());
    assertTrue(ipam.holds(NETWORK, pod.id(), "eth0"), "the first ADD's address was released");
    assertEquals(0, NetnsLab.run("ip", "netns", "exec", pod.name(), "ping", "-c", "1", "-W", "3",
        InTestIpam.GATEWAY), "the first ADD's interface was harmed");
    assertEquals(0, client.run(cniEnv("DEL", pod), conf("1.0.0")).exitCode());
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void failedAddReleasesItsAddress(PluginClient client) throws IOException {
    Pod pod = newPod(client);
    Path notANetns = Files.createTempFile(dir, "cg-not-a-netns", "");
    Map<String, String> env = cniEnv("ADD", pod);
    env.put("CNI_NETNS", notANetns.toString());
    PluginClient.Run add = client.run(env, conf("1.0.0"));
    assertEquals(CniError.DATAPATH_FAILED, add.json().getInteger("code"), add.stdout());
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"), "failed ADD leaked its address");
    assertTrue(events.stream().noneMatch(e -> ((PodEvent) e.payload()).containerId().equals(pod.id())),
        "a failed ADD published " + events);
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void gcReleasesEveryAttachmentNotInTheValidList(PluginClient client) throws Exception {
    Pod kept = newPod(client);
    Pod stale = newPod(client);
    assertEquals(0, client.run(cniEnv("ADD", kept), conf("1.0.0")).exitCode());
    assertEquals(0, client.run(cniEnv("ADD", stale), conf("1.0.0")).exitCode());
    String stdin = new JsonObject(conf("1.1.0")).put("cni.dev/valid-attachments",
        new JsonArray().add(new JsonObject().put("containerID", kept.id()).put("ifname", "eth0"))).encode();
    PluginClient.Run gc = client.run(env("CNI_COMMAND", "GC", "CNI_PATH", CNI_PATH), stdin);
    assertEquals(0, gc.exitCode(), gc.stdout());
    assertEquals("", gc.stdout());
    assertTrue(ipam.holds(NETWORK, kept.id(), "eth0"));
    assertFalse(ipam.holds(NETWORK, stale.id(), "eth0"));
    assertEquals(stale.id(), nextEvent(Addresses.POD_DELETED, stale).containerId());
    assertEquals(0, client.run(cniEnv("DEL", kept), conf("1.0.0")).exitCode());
    assertEquals(0, client.run(cniEnv("DEL", stale), conf("1.0.0")).exitCode());
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void statusAndAddWaitUntilTheNodeIsReady(PluginClient client) {
    ipam.ready = false;
    PluginClient.Run status = client.run(env("CNI_COMMAND", "STATUS"), conf("1.1.0"));
    assertEquals(CniError.NOT_AVAILABLE, status.exitCode(), status.stdout());
    assertTrue(status.json().getString("msg").contains("no block lease"), status.stdout());
    Pod pod = newPod(client);
    PluginClient.Run add = client.run(cniEnv("ADD", pod), conf("1.0.0"));
    assertEquals(CniError.TRY_AGAIN_LATER, add.json().getInteger("code"), add.stdout());
    assertFalse(podHasInterface(pod, "eth0"));

    // IPAM can allocate, the tunnel is down: the address IPAM gave while the node was checked is given back.
    ipam.ready = true;
    tunnelReady = false;
    PluginClient.Run tunnelDown = client.run(cniEnv("ADD", pod), conf("1.0.0"));
    assertEquals(CniError.TRY_AGAIN_LATER, tunnelDown.json().getInteger("code"), tunnelDown.stdout());
    assertTrue(tunnelDown.json().getString("msg").contains("charon not answering"), tunnelDown.stdout());
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"), "a not-ready ADD keeps no address");
    assertFalse(podHasInterface(pod, "eth0"));

    tunnelReady = true;
    PluginClient.Run ready = client.run(env("CNI_COMMAND", "STATUS"), conf("1.1.0"));
    assertEquals(0, ready.exitCode(), ready.stdout());
    assertEquals("", ready.stdout());
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void everyCommandIsTimedByCommandAndExitCode(PluginClient client) {
    io.micrometer.core.instrument.simple.SimpleMeterRegistry meters =
        new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
    io.micrometer.core.instrument.Metrics.addRegistry(meters);
    try {
      tunnelReady = false;
      assertEquals(CniError.NOT_AVAILABLE_DEGRADED, client.run(env("CNI_COMMAND", "STATUS"), conf("1.1.0")).exitCode());
      tunnelReady = true;
      assertEquals(0, client.run(env("CNI_COMMAND", "STATUS"), conf("1.1.0")).exitCode());
      assertEquals(1, meters.get(CniGateway.COMMAND_TIMER).tags("command", "STATUS", "code", "51").timer().count());
      assertEquals(1, meters.get(CniGateway.COMMAND_TIMER).tags("command", "STATUS", "code", "0").timer().count());
    } finally {
      io.micrometer.core.instrument.Metrics.removeRegistry(meters);
    }
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void statusSaysDegradedWhenOnlyTheTunnelIsDown(PluginClient client) {
    tunnelReady = false;
    PluginClient.Run status = client.run(env("CNI_COMMAND", "STATUS"), conf("1.1.0"));
    assertEquals(CniError.NOT_AVAILABLE_DEGRADED, status.exitCode(), status.stdout());
    assertTrue(status.json().getString("msg").contains("tunnel: charon not answering"), status.stdout());
    PluginClient.Run add = client.run(cniEnv("ADD", newPod(client)), conf("1.0.0"));
    assertEquals(CniError.TRY_AGAIN_LATER, add.exitCode(), add.stdout());

    ipam.ready = false;
    PluginClient.Run both = client.run(env("CNI_COMMAND", "STATUS"), conf("1.1.0"));
    assertEquals(CniError.NOT_AVAILABLE, both.exitCode(), both.stdout());
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void statusSaysSoWhenTheBridgePluginIsNotInCniPath(PluginClient client) {
    PluginClient.Run status = client.run(env("CNI_COMMAND", "STATUS", "CNI_PATH", "/nonexistent:/usr/share"),
        conf("1.1.0"));
    assertEquals(CniError.NOT_AVAILABLE, status.exitCode(), status.stdout());
    assertTrue(status.json().getString("msg").contains("'bridge' is not in CNI_PATH /nonexistent:/usr/share"),
        status.stdout());
    PluginClient.Run withIt = client.run(env("CNI_COMMAND", "STATUS", "CNI_PATH", "/nonexistent:" + CNI_PATH),
        conf("1.1.0"));
    assertEquals(0, withIt.exitCode(), withIt.stdout());
  }

  @Test
  void nodeBridgeCanBeEnsuredAgainWithoutChange() {
    NodeBridge bridge = new NodeBridge("cni0", lab.inNode());
    bridge.ensure(InTestIpam.GATEWAY + "/24", 1400);
    assertTrue(bridge.carries(InTestIpam.GATEWAY + "/24"));
    String addresses = NetnsLab.sh("ip", "-n", lab.node, "-4", "-o", "addr", "show", "dev", "cni0");
    assertEquals(1, addresses.lines().count(), addresses);
    assertFalse(new NodeBridge("cni0", lab.inNode()).carries("10.128.9.1/24"));
  }

  /** Pods cache the gateway's MAC: a port with a lower MAC joining must not change the bridge's. */
  @Test
  void theNodeBridgeKeepsItsMacWhenAPortWithALowerOneJoins() {
    String before = NetnsLab.sh("ip", "-n", lab.node, "-o", "link", "show", "dev", "cni0");
    String mac = before.replaceAll("(?s).*link/ether (\\S+).*", "$1");
    NetnsLab.must("ip", "-n", lab.node, "link", "add", "cg-lowmac", "type", "veth", "peer", "name", "cg-lowmac-p");
    try {
      NetnsLab.must("ip", "-n", lab.node, "link", "set", "cg-lowmac", "address", "00:00:00:00:00:01");
      NetnsLab.must("ip", "-n", lab.node, "link", "set", "cg-lowmac", "master", "cni0", "up");
      String after = NetnsLab.sh("ip", "-n", lab.node, "-o", "link", "show", "dev", "cni0");
      assertTrue(after.contains("link/ether " + mac + " "), "cni0 was " + mac + ", now: " + after);
    } finally {
      NetnsLab.run("ip", "-n", lab.node, "link", "delete", "cg-lowmac");
    }
  }

  // ---- requested addresses ----

  Map<String, String> cniEnvAsking(String command, Pod pod, String cniArgsIp) {
    Map<String, String> env = cniEnv(command, pod);
    env.put("CNI_ARGS", env.get("CNI_ARGS") + ";IP=" + cniArgsIp);
    return env;
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void addWithCniArgsIpGivesThePodExactlyThatAddress(PluginClient client) {
    String wanted = "10.128.1." + (201 + client.ordinal());
    Pod pod = newPod(client);
    Map<String, String> env = cniEnv("ADD", pod);
    // podman's --ip, as it sends it (and once without IgnoreUnknown: IP is a key we know)
    env.put("CNI_ARGS", client == PluginClient.C ? env.get("CNI_ARGS") + ";IP=" + wanted : "IP=" + wanted);
    PluginClient.Run add = client.run(env, conf("1.0.0"));
    assertEquals(0, add.exitCode(), add.stdout());
    assertEquals(wanted + "/24", add.json().getJsonArray("ips").getJsonObject(0).getString("address"));
    assertEquals(wanted + "/24", ipam.addressOf(NETWORK, pod.id(), "eth0"));
    assertTrue(NetnsLab.sh("ip", "-n", pod.name(), "-o", "addr", "show", "dev", "eth0").contains(wanted + "/24"));
    assertEquals(0, NetnsLab.run("ip", "netns", "exec", pod.name(), "ping", "-c", "1", "-W", "3",
        InTestIpam.GATEWAY), "the pod with its requested address cannot ping the gateway");
    assertEquals(0, client.run(cniEnv("DEL", pod), confWithPrev("1.0.0", add.json())).exitCode());
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"runtimeConfig", "args"})
  void addWithTheIpsCapabilityOrArgsCniIpsGivesThatAddressWhateverItsPrefix(String where) {
    PluginClient client = PluginClient.C;
    String wanted = "10.128.1." + (where.equals("args") ? 211 : 210);
    JsonObject conf = new JsonObject(conf("1.0.0"));
    JsonArray ips = new JsonArray().add(wanted + "/16");
    if (where.equals("runtimeConfig")) {
      conf.put("capabilities", new JsonObject().put("ips", true)).put("runtimeConfig", new JsonObject().put("ips", ips));
    } else {
      conf.put("args", new JsonObject().put("cni", new JsonObject().put("ips", ips)));
    }
    Pod pod = newPod(client);
    // The same address asked twice (here and in CNI_ARGS) is one request.
    PluginClient.Run add = client.run(cniEnvAsking("ADD", pod, wanted), conf.encode());
    assertEquals(0, add.exitCode(), add.stdout());
    assertEquals(wanted + "/24", add.json().getJsonArray("ips").getJsonObject(0).getString("address"),
        "the block's prefix length, not the one in the request");
    assertTrue(NetnsLab.sh("ip", "-n", pod.name(), "-o", "addr", "show", "dev", "eth0").contains(wanted + "/24"));
    assertEquals(0, client.run(cniEnv("DEL", pod), conf.encode()).exitCode());
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"));
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void requestedAddressIpamRefusesIsItsCode102AndThePodGetsNothing(PluginClient client) {
    String wanted = "10.128.1." + (221 + client.ordinal());
    Pod first = newPod(client);
    assertEquals(0, client.run(cniEnvAsking("ADD", first, wanted), conf("1.0.0")).exitCode());
    Pod second = newPod(client);
    PluginClient.Run refused = client.run(cniEnvAsking("ADD", second, wanted), conf("1.0.0"));
    assertEquals(CniError.REQUESTED_ADDRESS_UNAVAILABLE, refused.exitCode(), refused.stdout());
    assertEquals(CniError.REQUESTED_ADDRESS_UNAVAILABLE, refused.json().getInteger("code"), refused.stdout());
    assertTrue(refused.json().getString("msg").contains(wanted), refused.stdout());
    assertFalse(podHasInterface(second, "eth0"), "a refused ADD made an interface");
    assertFalse(ipam.holds(NETWORK, second.id(), "eth0"));
    assertEquals(wanted + "/24", ipam.addressOf(NETWORK, first.id(), "eth0"), "the holder lost its address");
    // podman's answer to a failed ADD is a DEL: it must not harm anyone
    assertEquals(0, client.run(cniEnv("DEL", second), conf("1.0.0")).exitCode());
    assertEquals(0, client.run(cniEnv("DEL", first), conf("1.0.0")).exitCode());
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void malformedOrConflictingRequestIsRefusedBeforeAnythingIsMade(PluginClient client) {
    Pod pod = newPod(client);
    JsonObject capability = new JsonObject(conf("1.0.0"))
        .put("runtimeConfig", new JsonObject().put("ips", new JsonArray().add("10.128.1.231")));
    record Case(Map<String, String> env, String stdin, int code, String inMessage) {}
    List<Case> cases = List.of(
        new Case(cniEnvAsking("ADD", pod, "10.128.1.x"), conf("1.0.0"), CniError.INVALID_ENVIRONMENT,
            "CNI_ARGS IP '10.128.1.x' is not an IP address"),
        new Case(cniEnvAsking("ADD", pod, "10.128.1.232,10.128.1.233"), conf("1.0.0"), CniError.INVALID_ENVIRONMENT,
            "more than one pod address requested (CNI_ARGS IP 10.128.1.232, CNI_ARGS IP 10.128.1.233)"),
        new Case(cniEnvAsking("ADD", pod, "10.128.1.232"), capability.encode(), CniError.INVALID_NETWORK_CONFIG,
            "CNI_ARGS IP 10.128.1.232, runtimeConfig.ips 10.128.1.231"),
        new Case(cniEnv("ADD", pod), capability.copy().put("runtimeConfig", new JsonObject().put("ips", "10.128.1.5"))
            .encode(), CniError.INVALID_NETWORK_CONFIG, "runtimeConfig.ips is not a list"),
        new Case(cniEnv("ADD", pod), capability.copy().put("args", new JsonObject().put("cni", new JsonObject()
            .put("ips", new JsonArray().add("10.128.1.5/33")))).encode(), CniError.INVALID_NETWORK_CONFIG,
            "args.cni.ips '10.128.1.5/33' is not an IP address"));
    for (Case c : cases) {
      PluginClient.Run run = client.run(c.env(), c.stdin());
      assertEquals(c.code(), run.exitCode(), c.inMessage() + ": " + run.stdout());
      assertTrue(run.json().getString("msg").contains(c.inMessage()), run.stdout());
    }
    assertFalse(podHasInterface(pod, "eth0"));
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"));
  }

  // ---- versions ----

  @ParameterizedTest
  @ValueSource(strings = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"})
  void addAnswersInTheVersionAsked(String version) {
    PluginClient client = PluginClient.C;
    Pod pod = newPod(client);
    PluginClient.Run add = client.run(cniEnv("ADD", pod), conf(version));
    assertEquals(0, add.exitCode(), add.stdout());
    JsonObject result = add.json();
    assertEquals(Set.of("cniVersion", "interfaces", "ips", "routes", "dns"), result.fieldNames());
    assertEquals(version, result.getString("cniVersion"));
    boolean legacy = CniVersions.before(version, "1.0.0");
    JsonArray interfaces = result.getJsonArray("interfaces");
    assertEquals(3, interfaces.size(), "bridge, host veth, pod interface: " + interfaces);
    assertEquals(Set.of("name", "mac"), interfaces.getJsonObject(0).fieldNames());
    assertEquals("cni0", interfaces.getJsonObject(0).getString("name"));
    assertEquals(Set.of("name", "mac"), interfaces.getJsonObject(1).fieldNames());
    JsonObject podSide = interfaces.getJsonObject(2);
    assertEquals(version.equals("1.1.0") ? Set.of("name", "mac", "sandbox", "mtu") : Set.of("name", "mac", "sandbox"),
        podSide.fieldNames());
    if (version.equals("1.1.0")) {
      assertEquals(1400, podSide.getInteger("mtu"));
    }
    JsonObject ip = result.getJsonArray("ips").getJsonObject(0);
    assertEquals(legacy ? Set.of("version", "interface", "address", "gateway") : Set.of("interface", "address", "gateway"),
        ip.fieldNames());
    if (legacy) {
      assertEquals("4", ip.getString("version"));
    }
    assertEquals(2, ip.getInteger("interface"));
    assertEquals(InTestIpam.GATEWAY, ip.getString("gateway"));
    assertEquals(new JsonArray().add(new JsonObject().put("dst", "0.0.0.0/0")), result.getJsonArray("routes"));
    assertEquals(new JsonObject(), result.getJsonObject("dns"));

    PluginClient.Run check = client.run(cniEnv("CHECK", pod), confWithPrev(version, result));
    assertEquals(0, check.exitCode(), "CHECK in " + version + ": " + check.stdout());
    PluginClient.Run del = client.run(cniEnv("DEL", pod), confWithPrev(version, result));
    assertEquals(0, del.exitCode(), del.stdout());
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"));
  }

  /** The conflist declares the mac capability, so libcni passes podman's --mac-address on; bridge sets it. */
  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void aRuntimeConfigMacIsThePodInterfacesMac(PluginClient client) {
    Pod pod = newPod(client);
    String mac = "0a:58:0a:80:01:" + (client == PluginClient.C ? "c1" : "a1");
    String config = new JsonObject(conf("1.0.0")).put("runtimeConfig", new JsonObject().put("mac", mac)).encode();
    PluginClient.Run add = client.run(cniEnv("ADD", pod), config);
    assertEquals(0, add.exitCode(), add.stdout());
    JsonObject podSide = add.json().getJsonArray("interfaces").getJsonObject(2);
    assertEquals(mac, podSide.getString("mac"));
    assertTrue(NetnsLab.sh("ip", "-n", pod.name(), "link", "show", "dev", "eth0").contains("link/ether " + mac));
    assertEquals(0, client.run(cniEnv("DEL", pod), config).exitCode());
  }

  // ---- the delegate's IPAM ----

  static Stream<org.junit.jupiter.params.provider.Arguments> clientsAndVersions() {
    return Stream.of(org.junit.jupiter.params.provider.Arguments.of(PluginClient.C, "0.3.1"),
        org.junit.jupiter.params.provider.Arguments.of(PluginClient.C, "1.0.0"),
        org.junit.jupiter.params.provider.Arguments.of(PluginClient.C, "1.1.0"),
        org.junit.jupiter.params.provider.Arguments.of(PluginClient.JAVA, "1.0.0"));
  }

  /**
   * A CNI_PATH with only the bridge plugin and our binary (no static, no host-local): the ADD
   * works only if bridge ran our binary as its IPAM plugin, and the DEL, given bridge alone,
   * only if it ran no IPAM plugin at all.
   */
  @ParameterizedTest
  @org.junit.jupiter.params.provider.MethodSource("clientsAndVersions")
  void ourBinaryIsTheBridgePluginsIpamAndDelNeedsNone(PluginClient client, String version) throws Exception {
    String bridgeAndUs = pluginDir("bridge-and-" + client, client).toString();
    String bridgeOnly = pluginDir("bridge-only", null).toString();
    Pod pod = newPod(client);
    Map<String, String> addEnv = cniEnv("ADD", pod);
    addEnv.put("CNI_PATH", bridgeAndUs);
    PluginClient.Run add = client.run(addEnv, conf(version));
    assertEquals(0, add.exitCode(), add.stdout());
    JsonObject ip = add.json().getJsonArray("ips").getJsonObject(0);
    String address = ip.getString("address");
    assertEquals(ipam.addressOf(NETWORK, pod.id(), "eth0"), address);
    assertEquals(InTestIpam.GATEWAY, ip.getString("gateway"));
    assertTrue(NetnsLab.sh("ip", "-n", pod.name(), "-o", "addr", "show", "dev", "eth0").contains(address));
    assertTrue(NetnsLab.sh("ip", "-n", pod.name(), "route", "show", "default").contains("via " + InTestIpam.GATEWAY),
        "the default route our IPAM answer carried");
    assertEquals(address, nextEvent(Addresses.POD_ADDED, pod).address());

    Map<String, String> checkEnv = cniEnv("CHECK", pod);
    checkEnv.put("CNI_PATH", bridgeAndUs);
    PluginClient.Run check = client.run(checkEnv, confWithPrev(version, add.json()));
    assertEquals(0, check.exitCode(), "CHECK through our IPAM: " + check.stdout());

    Map<String, String> delEnv = cniEnv("DEL", pod);
    delEnv.put("CNI_PATH", bridgeOnly);
    PluginClient.Run del = client.run(delEnv, conf(version));
    assertEquals(0, del.exitCode(), del.stdout());
    assertFalse(podHasInterface(pod, "eth0"));
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"));
    assertEquals(address, nextEvent(Addresses.POD_DELETED, pod).address());
  }

  /** Called as bridge's IPAM plugin, either binary answers from its stdin alone: no agent is asked. */
  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void asBridgesIpamPluginTheBinaryAnswersFromTheConfigAlone(PluginClient client) {
    JsonObject granted = new JsonObject().put("cniVersion", "0.4.0").put("ips", new JsonArray().add(new JsonObject()
        .put("version", "4").put("address", "10.128.1.77/24").put("gateway", InTestIpam.GATEWAY)))
        .put("routes", new JsonArray().add(new JsonObject().put("dst", "0.0.0.0/0")));
    JsonObject config = new JsonObject().put("cniVersion", "0.4.0").put("name", NETWORK).put("type", "bridge")
        .put(PluginProtocol.SOCKET_KEY, dir.resolve("nobody-here.sock").toString())
        .put("ipam", new JsonObject().put("type", PluginProtocol.IPAM_TYPE).put(PluginProtocol.IPAM_RESULT_KEY, granted));
    Map<String, String> env = env("CNI_CONTAINERID", "ctr-ipam", "CNI_NETNS", "/run/netns/none", "CNI_IFNAME", "eth0",
        "CNI_PATH", CNI_PATH);

    env.put("CNI_COMMAND", "ADD");
    PluginClient.Run add = client.run(env, config.encode());
    assertEquals(0, add.exitCode(), add.stdout());
    assertEquals(granted, add.json());
    for (String command : List.of("DEL", "CHECK", "GC", "STATUS")) {
      env.put("CNI_COMMAND", command);
      PluginClient.Run run = client.run(env, config.encode());
      assertEquals(0, run.exitCode(), command + ": " + run.stdout());
      assertEquals("", run.stdout(), command);
    }
    env.put("CNI_COMMAND", "ADD");
    config.getJsonObject("ipam").remove(PluginProtocol.IPAM_RESULT_KEY);
    PluginClient.Run withoutResult = client.run(env, config.encode());
    assertEquals(CniError.INVALID_NETWORK_CONFIG, withoutResult.exitCode(), withoutResult.stdout());
    assertTrue(withoutResult.json().getString("msg").contains("ipam has no result"), withoutResult.stdout());
    env.put("CNI_COMMAND", "FROB");
    PluginClient.Run unknown = client.run(env, config.encode());
    assertEquals(CniError.INVALID_ENVIRONMENT, unknown.exitCode(), unknown.stdout());
    assertTrue(unknown.json().getString("msg").contains("unknown CNI_COMMAND 'FROB'"), unknown.stdout());
  }

  /** A plugin directory holding the reference bridge plugin and, when client is given, our binary as ipsec-cni. */
  Path pluginDir(String name, PluginClient client) throws IOException {
    Path bin = dir.resolve(name);
    if (Files.isDirectory(bin)) {
      return bin;
    }
    Files.createDirectories(bin);
    Files.createSymbolicLink(bin.resolve("bridge"), Path.of(CNI_PATH, "bridge"));
    if (client != null) {
      Path ours = bin.resolve(PluginProtocol.IPAM_TYPE);
      List<String> command = new java.util.ArrayList<>(client.command());
      command.set(0, Path.of(command.get(0)).toAbsolutePath().toString());
      String script = "#!/bin/sh\nexec " + command.stream().map(a -> "'" + a + "'")
          .collect(java.util.stream.Collectors.joining(" ")) + "\n";
      Files.writeString(ours, script);
      Files.setPosixFilePermissions(ours, PosixFilePermissions.fromString("rwx------"));
    }
    return bin;
  }

  // ---- errors ----

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void malformedConfigIsADecodeFailure(PluginClient client) {
    Map<String, String> env = cniEnv("ADD", newPod(client));
    env.put(PluginProtocol.SOCKET_ENV, socket.toString());
    PluginClient.Run run = client.run(env, "{\"cniVersion\": \"1.0.0\", \"name\": ");
    assertEquals(CniError.DECODE_FAILURE, run.exitCode(), run.stdout());
    assertEquals(CniError.DECODE_FAILURE, run.json().getInteger("code"));
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void unsupportedVersionIsIncompatible(PluginClient client) {
    Pod pod = newPod(client);
    for (String version : List.of("0.2.0", "9.9.9")) {
      PluginClient.Run run = client.run(cniEnv("ADD", pod), conf(version));
      assertEquals(CniError.INCOMPATIBLE_VERSION, run.json().getInteger("code"), run.stdout());
      assertEquals(version, run.json().getString("cniVersion"));
    }
    assertFalse(podHasInterface(pod, "eth0"));
  }

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void missingOrInvalidEnvironmentIsCode4(PluginClient client) {
    Pod pod = newPod(client);
    Map<String, Map<String, String>> cases = Map.of(
        "CNI_NETNS", without(cniEnv("ADD", pod), "CNI_NETNS"),
        "CNI_CONTAINERID", with(cniEnv("ADD", pod), "CNI_CONTAINERID", "-starts-with-dash"),
        "CNI_IFNAME", with(cniEnv("ADD", pod), "CNI_IFNAME", "eth0/../x"),
        "CNI_IFNAME ", with(cniEnv("DEL", pod), "CNI_IFNAME", "a-name-too-long-x"),
        "CNI_COMMAND", with(cniEnv("ADD", pod), "CNI_COMMAND", "ATTACH"),
        "CNI_ARGS", with(cniEnv("ADD", pod), "CNI_ARGS", "K8S_POD_NAME=x;COLOUR=blue"));
    cases.forEach((variable, env) -> {
      PluginClient.Run run = client.run(env, conf("1.0.0"));
      assertEquals(CniError.INVALID_ENVIRONMENT, run.exitCode(), variable + ": " + run.stdout());
      assertTrue(run.json().getString("msg").contains(variable.strip()), run.stdout());
    });
    assertFalse(podHasInterface(pod, "eth0"));
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"));
  }

  // ---- agent down ----

  @ParameterizedTest
  @EnumSource(PluginClient.class)
  void agentDownMeansAddTryLaterDelRecordedAndReplayed(PluginClient client) throws Exception {
    Pod pod = newPod(client);
    assertEquals(0, client.run(cniEnv("ADD", pod), conf("1.0.0")).exitCode());
    nextEvent(Addresses.POD_ADDED, pod);
    stopGateway();
    try {
      PluginClient.Run add = client.run(cniEnv("ADD", newPod(client)), conf("1.0.0"));
      assertEquals(CniError.TRY_AGAIN_LATER, add.exitCode(), add.stdout());
      assertTrue(add.json().getString("msg").contains(socket.toString()), add.stdout());
      for (String command : List.of("CHECK", "STATUS")) {
        PluginClient.Run run = client.run(cniEnv(command, pod), conf("1.0.0"));
        assertEquals(CniError.NOT_AVAILABLE, run.exitCode(), command + ": " + run.stdout());
      }

      PluginClient.Run del = client.run(cniEnv("DEL", pod), conf("1.0.0"));
      assertEquals(0, del.exitCode(), del.stdout());
      Path recorded = settings.pendingDelDir().resolve(PluginProtocol.pendingDelFileName(pod.id(), "eth0"));
      PluginCall call = PluginCall.fromJson(Files.readString(recorded));
      assertEquals("DEL", call.env("CNI_COMMAND"));
      assertEquals(conf("1.0.0"), call.stdin());
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(recorded)));
      assertTrue(ipam.holds(NETWORK, pod.id(), "eth0"), "nobody was there to release it yet");
    } finally {
      startGateway();
    }
    await(gateway.replayPendingDeletesNow());
    assertFalse(ipam.holds(NETWORK, pod.id(), "eth0"), "the replayed DEL did not release the address");
    assertFalse(podHasInterface(pod, "eth0"));
    assertEquals(NETWORK, nextEvent(Addresses.POD_DELETED, pod).network());
    try (Stream<Path> left = Files.list(settings.pendingDelDir())) {
      assertEquals(List.of(), left.toList());
    }
  }

  @Test
  void socketIsOnlyForRoot() throws IOException {
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
  }

  @Test
  void gatewayAnswersItsOwnStatus() {
    var reply = await(vertx.eventBus().<dev.ipseccni.bus.message.ComponentStatus>request(
        Addresses.nodeStatus(NODE, Addresses.CNI_GATEWAY), null));
    assertTrue(reply.body().ready(), reply.body().toString());
  }

  private static Map<String, String> without(Map<String, String> env, String name) {
    env.remove(name);
    return env;
  }

  private static Map<String, String> with(Map<String, String> env, String name, String value) {
    env.put(name, value);
    return env;
  }
}

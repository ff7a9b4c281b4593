package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The CNI contract end to end on one lab node with the real IPAM, tunnel and firewall
 * services behind the gateway: every call is our plugin binary exec'd in the node as a
 * runtime would. The node's block is a /28 (13 pod addresses), so exhaustion is cheap to
 * reach. Every test leaves the node as it found it: no allocation, no veth.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CniLabTest {

  private static final int NODE = 1;
  private static final String BLOCK_PREFIX = "10.128.1.";
  private static final int CAPACITY = 13; // .2 … .14 of 10.128.1.0/28: .0 network, .1 gateway, .15 broadcast
  private static final Duration RECOVERY = Duration.ofMinutes(4);

  private LabHarness lab;
  private CniLab cni;
  private JsonNode conflist;
  private final List<CniLab.Pod> pods = new ArrayList<>();

  @BeforeAll
  void up() {
    lab = new LabHarness();
    cni = new CniLab(lab);
    cni.up(1, "{\"network\":{\"blockPrefixLength\":28,\"preferredBlock\":\"10.128.1.0/28\"}}");
    conflist = cni.conflist(NODE);
  }

  @AfterAll
  void down() {
    if (lab != null) {
      lab.close();
    }
  }

  /** Whatever a test added is deleted again, and the node must then hold nothing. */
  @AfterEach
  void nothingLeftBehind() {
    for (CniLab.Pod pod : pods) {
      cni.call(NODE, "DEL", pod, stdin()).ok("DEL of " + pod.name());
      cni.removeNamespace(pod);
    }
    pods.clear();
    LabHarness.await(RECOVERY, "pending DELs replayed", () -> cni.allocations(NODE).isEmpty());
    assertEquals(Map.of(), cni.allocations(NODE), "allocations after DEL");
    assertEquals(List.of(), cni.veths(NODE), "veths after DEL");
  }

  private ObjectNode stdin() {
    return cni.stdin(conflist, conflist.path("cniVersion").asText());
  }

  private CniLab.Pod pod(String name) {
    CniLab.Pod pod = cni.newPod(name);
    pods.add(pod);
    return pod;
  }

  @Test
  @Order(1)
  void podsGetTheNodesBlockInSequenceAndReachEachOther() {
    CniLab.Pod a = pod("seq-a");
    CniLab.Pod b = pod("seq-b");
    JsonNode ra = cni.call(NODE, "ADD", a, stdin()).ok("ADD a").json();
    JsonNode rb = cni.call(NODE, "ADD", b, stdin()).ok("ADD b").json();
    assertEquals(BLOCK_PREFIX + "2/28", CniLab.address(ra), ra.toString());
    assertEquals(BLOCK_PREFIX + "3/28", CniLab.address(rb), rb.toString());
    assertEquals(BLOCK_PREFIX + "1", ra.path("ips").get(0).path("gateway").asText());
    assertEquals("1.0.0", ra.path("cniVersion").asText(), "the conflist's version");
    assertEquals(Map.of(a.containerId() + "/eth0", BLOCK_PREFIX + "2/28", b.containerId() + "/eth0",
        BLOCK_PREFIX + "3/28"), cni.allocations(NODE));
    assertEquals(2, cni.veths(NODE).size());

    lab.exec(a.where(), "ping", "-c", "1", "-W", "5", BLOCK_PREFIX + "3").orFail("pod a -> pod b");
    lab.exec(b.where(), "ping", "-c", "1", "-W", "5", BLOCK_PREFIX + "2").orFail("pod b -> pod a");
  }

  @Test
  @Order(2)
  void addCheckDelRoundTripToleratesCapabilitiesAndRepeatedDel() {
    CniLab.Pod pod = pod("round");
    // Runtimes leave the conflist's capabilities in stdin next to the runtimeConfig they fill.
    ObjectNode conf = stdin();
    conf.putObject("capabilities").put("portMappings", true).put("mac", true);
    conf.putObject("runtimeConfig").putArray("portMappings");
    JsonNode result = cni.call(NODE, "ADD", pod, conf).ok("ADD with capabilities").json();
    String address = CniLab.address(result);
    assertTrue(address.startsWith(BLOCK_PREFIX), result.toString());
    assertEquals(pod.netns(), result.path("interfaces").get(result.path("ips").get(0).path("interface").asInt())
        .path("sandbox").asText(), "the ips entry names the pod's interface");

    ObjectNode withPrev = conf.deepCopy();
    withPrev.set("prevResult", result);
    CniLab.Call check = cni.call(NODE, "CHECK", pod, withPrev).ok("CHECK");
    assertEquals("", check.stdout().strip(), "CHECK prints nothing on success");

    CniLab.Call again = cni.call(NODE, "ADD", pod, conf);
    assertNotEquals(0, again.exitCode(), "a second ADD must not re-create eth0: " + again.stdout());
    assertEquals(Map.of(pod.containerId() + "/eth0", address), cni.allocations(NODE), "the failed ADD released nothing");

    CniLab.Call del = cni.call(NODE, "DEL", pod, withPrev).ok("DEL");
    assertEquals("", del.stdout().strip(), "DEL prints nothing");
    assertEquals(Map.of(), cni.allocations(NODE));
    assertEquals(List.of(), cni.veths(NODE));
    cni.call(NODE, "DEL", pod, withPrev).ok("repeated DEL");

    CniLab.Call checkGone = cni.call(NODE, "CHECK", pod, withPrev);
    assertNotEquals(0, checkGone.exitCode(), "CHECK after DEL must fail: " + checkGone.stdout());

    // containerd sends DEL with an empty CNI_NETNS once the sandbox is gone
    cni.removeNamespace(pod);
    Map<String, String> env = cni.podEnv("DEL", pod);
    env.put("CNI_NETNS", "");
    cni.call(NODE, env, withPrev).ok("DEL with an empty CNI_NETNS");
  }

  @Test
  @Order(3)
  void delWithEmptyNetnsReleasesTheAddressOfAPodWhoseSandboxIsGone() {
    CniLab.Pod pod = pod("empty-netns");
    cni.call(NODE, "ADD", pod, stdin()).ok("ADD");
    cni.removeNamespace(pod);
    Map<String, String> env = cni.podEnv("DEL", pod);
    env.put("CNI_NETNS", "");
    cni.call(NODE, env, stdin()).ok("DEL with an empty CNI_NETNS");
    assertEquals(Map.of(), cni.allocations(NODE));
  }

  @Test
  @Order(4)
  void olderConflistGetsTheOlderResultFormatThroughTheAgent() {
    CniLab.Pod pod = pod("old");
    ObjectNode conf = cni.stdin(conflist, "0.4.0");
    JsonNode result = cni.call(NODE, "ADD", pod, conf).ok("ADD 0.4.0").json();
    assertEquals("0.4.0", result.path("cniVersion").asText(), result.toString());
    assertEquals("4", result.path("ips").get(0).path("version").asText(), "0.4.0 results carry ips[].version");
    ObjectNode withPrev = conf.deepCopy();
    withPrev.set("prevResult", result);
    cni.call(NODE, "CHECK", pod, withPrev).ok("CHECK 0.4.0");
    cni.call(NODE, "DEL", pod, withPrev).ok("DEL 0.4.0");

    CniLab.Pod current = pod("current");
    JsonNode now = cni.call(NODE, "ADD", current, stdin()).ok("ADD 1.0.0").json();
    assertTrue(now.path("ips").get(0).path("version").isMissingNode(), "1.0.0 results have no ips[].version: " + now);
  }

  @Test
  @Order(5)
  void gcWithAValidListReleasesEverythingElse() {
    CniLab.Pod keep = pod("gc-keep");
    CniLab.Pod stale1 = pod("gc-stale1");
    CniLab.Pod stale2 = pod("gc-stale2");
    for (CniLab.Pod p : List.of(keep, stale1, stale2)) {
      cni.call(NODE, "ADD", p, stdin()).ok("ADD " + p.name());
    }
    // The runtime lost the two stale sandboxes without a DEL reaching us.
    cni.removeNamespace(stale1);
    cni.removeNamespace(stale2);

    ObjectNode gc = cni.stdin(conflist, "1.1.0");
    ArrayNode valid = gc.putArray("cni.dev/valid-attachments");
    valid.addObject().put("containerID", keep.containerId()).put("ifname", "eth0");
    gc.set("cni.dev/attachments", valid.deepCopy());
    Map<String, String> env = new LinkedHashMap<>(Map.of("CNI_COMMAND", "GC", "CNI_PATH", cni.cniPath,
        "CNI_CONTAINERID", "", "CNI_NETNS", "", "CNI_IFNAME", ""));
    CniLab.Call call = cni.call(NODE, env, gc).ok("GC");
    assertEquals("", call.stdout().strip());
    assertEquals(Set.of(keep.containerId() + "/eth0"), cni.allocations(NODE).keySet());
    assertEquals(1, cni.veths(NODE).size(), "only the kept pod's veth");
    lab.exec(keep.where(), "ping", "-c", "1", "-W", "5", BLOCK_PREFIX + "1").orFail("the kept pod still works");
  }

  @Test
  @Order(6)
  void badCallsGetClearErrorsAndProbesWork() {
    CniLab.Pod ghost = new CniLab.Pod("ghost", "cxghost1");
    CniLab.Call noNetns = cni.call(NODE, "ADD", ghost, stdin());
    assertNotEquals(0, noNetns.exitCode());
    assertEquals(4, noNetns.code(), noNetns.stdout());
    assertTrue(noNetns.json().path("msg").asText().contains(ghost.netns()), noNetns.stdout());
    assertEquals(Map.of(), cni.allocations(NODE), "nothing allocated for a missing netns");
    cni.call(NODE, "DEL", ghost, stdin()).ok("DEL of a pod whose netns never existed");

    // libcni's VERSION probe: dummy values, nothing else to depend on
    Map<String, String> probe = Map.of("CNI_COMMAND", "VERSION", "CNI_NETNS", "dummy", "CNI_IFNAME", "dummy",
        "CNI_PATH", "dummy", "CNI_CONTAINERID", "dummy");
    for (String version : List.of("0.4.0", "1.0.0", "1.1.0")) {
      JsonNode answer = cni.call(NODE, probe, LabHarness.JSON.createObjectNode().put("cniVersion", version))
          .ok("VERSION " + version).json();
      assertEquals(version, answer.path("cniVersion").asText(), answer.toString());
      Set<String> supported = new HashSet<>();
      answer.path("supportedVersions").forEach(v -> supported.add(v.asText()));
      assertTrue(supported.containsAll(Set.of("0.3.1", "0.4.0", "1.0.0", "1.1.0")), answer.toString());
    }

    Map<String, String> status = new LinkedHashMap<>(Map.of("CNI_COMMAND", "STATUS", "CNI_PATH", cni.cniPath));
    cni.call(NODE, status, cni.stdin(conflist, "1.1.0")).ok("STATUS of a ready node");
    status.put("CNI_PATH", cni.plugin.getParent().toString());
    CniLab.Call noBridge = cni.call(NODE, status, cni.stdin(conflist, "1.1.0"));
    assertEquals(50, noBridge.exitCode(), noBridge.stdout());
    assertTrue(noBridge.json().path("msg").asText().contains("'bridge' is not in CNI_PATH"), noBridge.stdout());
  }

  @Test
  @Order(7)
  void addWhileTheNodeIsNotReadyIsTryAgainAndTheFollowingDelPasses() {
    lab.lab("stop-charon", String.valueOf(NODE));
    try {
      Map<String, String> status = Map.of("CNI_COMMAND", "STATUS", "CNI_PATH", cni.cniPath);
      LabHarness.await(RECOVERY, "STATUS reporting the stopped charon",
          () -> cni.call(NODE, status, cni.stdin(conflist, "1.1.0")).exitCode() != 0);
      CniLab.Pod pod = pod("not-ready");
      CniLab.Call add = cni.call(NODE, "ADD", pod, stdin());
      assertEquals(11, add.exitCode(), add.stdout());
      assertEquals(11, add.code(), add.stdout());
      // podman's answer to 11: a DEL, without prevResult
      cni.call(NODE, "DEL", pod, stdin()).ok("DEL after 11");
      assertEquals(Map.of(), cni.allocations(NODE));
      assertEquals(List.of(), cni.veths(NODE));
      assertFalse(lab.exec(pod.where(), "ip", "link", "show", "eth0").exitCode() == 0, "no eth0 in the pod");
    } finally {
      lab.lab("start-charon", String.valueOf(NODE));
    }
    Map<String, String> status = Map.of("CNI_COMMAND", "STATUS", "CNI_PATH", cni.cniPath);
    LabHarness.await(RECOVERY, "STATUS 0 after charon is back",
        () -> cni.call(NODE, status, cni.stdin(conflist, "1.1.0")).exitCode() == 0);
  }

  @Test
  @Order(8)
  void agentKilledDuringABatchOfAddsRetriesSucceedWithoutDuplicates() throws Exception {
    int batch = 8;
    List<CniLab.Pod> batchPods = new ArrayList<>();
    for (int i = 0; i < batch; i++) {
      batchPods.add(pod("batch-" + i));
    }
    ExecutorService runtime = Executors.newFixedThreadPool(batch);
    Map<CniLab.Pod, CniLab.Call> first = new LinkedHashMap<>();
    try {
      List<Future<CniLab.Call>> adds = new ArrayList<>();
      for (CniLab.Pod p : batchPods) {
        adds.add(runtime.submit(() -> cni.call(NODE, "ADD", p, stdin())));
      }
      // kill -9 as soon as the first addresses are journalled: the rest of the batch is in flight
      LabHarness.await(RECOVERY, "first allocations of the batch", () -> cni.allocations(NODE).size() >= 2);
      lab.lab("kill-agent", String.valueOf(NODE));
      for (int i = 0; i < batch; i++) {
        first.put(batchPods.get(i), adds.get(i).get());
      }
    } finally {
      runtime.shutdownNow();
    }

    // While the agent is down: ADD is "try again later", DEL is kept for later and passes.
    CniLab.Pod late = pod("while-down");
    CniLab.Call add = cni.call(NODE, "ADD", late, stdin());
    assertEquals(11, add.code(), add.stdout());
    cni.call(NODE, "DEL", late, stdin()).ok("DEL while the agent is down");

    lab.lab("start-agent", String.valueOf(NODE));
    Map<String, String> got = new LinkedHashMap<>();
    for (CniLab.Pod p : batchPods) {
      CniLab.Call call = first.get(p);
      if (call.exitCode() != 0) {
        call = cni.addRetrying(NODE, p, stdin(), RECOVERY).ok("retried ADD of " + p.name());
      }
      got.put(p.containerId() + "/eth0", CniLab.address(call.json()));
    }
    assertEquals(batch, new HashSet<>(got.values()).size(), "no duplicate address: " + got);
    assertEquals(got, cni.allocations(NODE), "IPAM holds exactly the batch, each at the address its pod got");
    assertEquals(batch, cni.veths(NODE).size(), "one veth per pod: " + cni.veths(NODE));
    for (CniLab.Pod p : batchPods) {
      String mine = got.get(p.containerId() + "/eth0");
      String inPod = lab.exec(p.where(), "ip", "-4", "-o", "addr", "show", "dev", "eth0").orFail("addr of " + p.name())
          .stdout();
      assertTrue(inPod.contains(mine), p.name() + " has " + mine + ": " + inPod);
    }
    assertTrue(first.values().stream().anyMatch(c -> c.exitCode() == 0), "some ADDs finished before the kill");
  }

  @Test
  @Order(9)
  void exhaustedPoolIsAClearCniError() {
    for (int i = 0; i < CAPACITY; i++) {
      CniLab.Pod p = pod("fill-" + i);
      cni.call(NODE, "ADD", p, stdin()).ok("ADD " + (i + 1) + " of " + CAPACITY);
    }
    CniLab.Pod one = pod("one-too-many");
    CniLab.Call add = cni.call(NODE, "ADD", one, stdin());
    assertEquals(100, add.exitCode(), add.stdout());
    String msg = add.json().path("msg").asText();
    assertTrue(msg.contains("exhausted") && msg.contains("10.128.1.0/28"), add.stdout());
    assertEquals(CAPACITY, cni.allocations(NODE).size());
    assertEquals(CAPACITY, cni.veths(NODE).size());
    assertFalse(lab.exec(one.where(), "ip", "link", "show", "eth0").exitCode() == 0, "no eth0 in the refused pod");
  }

  @Test
  @Order(10)
  void podAskingForAnAddressWithCniArgsIpGetsItAndIsReachable() {
    assertTrue(conflist.path("plugins").get(0).path("capabilities").path("ips").asBoolean(),
        "the agent's conflist declares the ips capability: " + conflist);
    CniLab.Pod fixed = pod("fixed-ip");
    CniLab.Pod other = pod("other");
    // podman --ip sends IP= in CNI_ARGS; the address is inside the node's 10.128.1.0/28 but not the next in line.
    String wanted = BLOCK_PREFIX + "9";
    JsonNode result = cni.call(NODE, withIp(cni.podEnv("ADD", fixed), wanted), stdin()).ok("ADD with IP=").json();
    assertEquals(wanted + "/28", CniLab.address(result), result.toString());
    assertEquals(Map.of(fixed.containerId() + "/eth0", wanted + "/28"), cni.allocations(NODE));
    String inPod = lab.exec(fixed.where(), "ip", "-4", "-o", "addr", "show", "dev", "eth0").orFail("addr").stdout();
    assertTrue(inPod.contains(wanted + "/28"), inPod);
    cni.call(NODE, "ADD", other, stdin()).ok("ADD of a pod asking for nothing");
    lab.exec(other.where(), "ping", "-c", "1", "-W", "5", wanted).orFail("another pod -> the pod at its requested address");

    CniLab.Pod late = pod("same-ip");
    CniLab.Call taken = cni.call(NODE, withIp(cni.podEnv("ADD", late), wanted), stdin());
    assertEquals(102, taken.exitCode(), taken.stdout());
    assertEquals(102, taken.code(), taken.stdout());
    assertTrue(taken.json().path("msg").asText().contains(wanted + " is already used by container "
        + fixed.containerId()), taken.stdout());
    CniLab.Call outside = cni.call(NODE, withIp(cni.podEnv("ADD", late), "10.128.2.9"), stdin());
    assertEquals(102, outside.code(), outside.stdout());
    assertTrue(outside.json().path("msg").asText().contains("10.128.2.9 is outside 10.128.1.0/28"), outside.stdout());
    assertFalse(lab.exec(late.where(), "ip", "link", "show", "eth0").exitCode() == 0, "no eth0 in the refused pod");
    assertEquals(2, cni.allocations(NODE).size(), "the refused pod holds nothing: " + cni.allocations(NODE));
  }

  private static Map<String, String> withIp(Map<String, String> env, String address) {
    env.put("CNI_ARGS", env.get("CNI_ARGS") + ";IP=" + address);
    return env;
  }
}

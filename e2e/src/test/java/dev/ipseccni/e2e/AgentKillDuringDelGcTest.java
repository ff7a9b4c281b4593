package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The agent of a one-node lab killed (SIGKILL) while CNI DELs are in flight, then while a
 * CNI GC is. The runtime behaves as kubelet does: a failed DEL is retried until it
 * succeeds, the sandbox namespace is removed only after its DEL succeeded, GC is called
 * again until it succeeds. After the restart (and the replay of the DELs the plugin
 * recorded while the agent was unreachable) no deleted pod keeps an address or a veth on
 * cni0, and no address is held twice. Times are printed as {@code BENCH chaos-…}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AgentKillDuringDelGcTest {
  static final int NODE = 1;
  static final int PODS = 40;
  static final Duration RECOVERY = Duration.ofMinutes(4);

  private LabHarness lab;
  private CniLab cni;
  private JsonNode conflist;

  @BeforeAll
  void oneNode() {
    lab = new LabHarness();
    cni = new CniLab(lab);
    cni.up(1, "{}");
    conflist = cni.conflist(NODE);
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  private ObjectNode stdin() {
    return cni.stdin(conflist, conflist.path("cniVersion").asText());
  }

  /** ADDs the pods, 8 at a time; returns container id/eth0 → address. */
  private Map<String, String> wire(List<CniLab.Pod> pods) throws Exception {
    ExecutorService runtime = Executors.newFixedThreadPool(8);
    try {
      Map<CniLab.Pod, Future<CniLab.Call>> adds = new LinkedHashMap<>();
      pods.forEach(p -> adds.put(p, runtime.submit(() -> cni.addRetrying(NODE, p, stdin(), RECOVERY))));
      Map<String, String> wired = new LinkedHashMap<>();
      for (var e : adds.entrySet()) {
        wired.put(e.getKey().containerId() + "/eth0", CniLab.address(e.getValue().get().ok("ADD " + e.getKey().name()).json()));
      }
      return wired;
    } finally {
      runtime.shutdownNow();
    }
  }

  private List<CniLab.Pod> pods(String prefix, int n) {
    List<CniLab.Pod> pods = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      pods.add(cni.newPod(prefix + i));
    }
    return pods;
  }

  private Path pendingDels() {
    // PluginProtocol.pendingDelDir: beside the agent's socket (the lab's is state/cni.sock)
    return lab.nodeDir(NODE).resolve("state/pending-del");
  }

  private long pendingDelCount() {
    Path dir = pendingDels();
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.count();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  /**
   * SIGKILL straight to the agent's JVM: {@code lab kill-agent} (a script, a few hundred
   * ms) is slower than a burst of DELs through the plugin.
   */
  private static void killAgent(long pid) throws Exception {
    Process kill = new ProcessBuilder("kill", "-KILL", Long.toString(pid)).inheritIO().start();
    assertEquals(0, kill.waitFor(), "kill -KILL " + pid);
  }

  /** SIGKILL from this thread, no process started in between: kill(2) through ProcessHandle. */
  private static void killAgentNow(long pid) {
    ProcessHandle agent = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("agent " + pid + " gone before the kill"));
    assertTrue(agent.destroyForcibly(), "SIGKILL to agent " + pid);
  }

  private void agentRunning() {
    if (lab.pid("agent", NODE).isEmpty()) {
      lab.lab("start-agent", String.valueOf(NODE));
    }
  }

  private void assertNoAddressTwice(Map<String, String> held) {
    assertEquals(held.size(), held.values().stream().distinct().count(), "an address held twice: " + held);
  }

  @Test
  @Order(1)
  void agentKilledDuringConcurrentDelsLeavesNoAddressNoVethAndNothingTwice() throws Exception {
    List<CniLab.Pod> pods = pods("del-", PODS);
    Map<String, String> wired = wire(pods);
    assertEquals(PODS, cni.allocations(NODE).size());
    assertEquals(PODS, cni.veths(NODE).size());

    long agent = lab.pid("agent", NODE).orElseThrow();
    AtomicInteger answered = new AtomicInteger();
    ExecutorService runtime = Executors.newFixedThreadPool(PODS);
    long start = System.nanoTime();
    int answeredAtKill;
    long killedAt;
    Map<CniLab.Pod, CniLab.Call> first = new LinkedHashMap<>();
    try {
      // The thread that gets the first answer kills the agent at once: a poll of the
      // count from here can come after the agent has answered every DEL.
      CountDownLatch kill = new CountDownLatch(1);
      AtomicInteger atKill = new AtomicInteger(-1);
      Map<CniLab.Pod, Future<CniLab.Call>> dels = new LinkedHashMap<>();
      pods.forEach(p -> dels.put(p, runtime.submit(() -> {
        CniLab.Call c = cni.call(NODE, "DEL", p, stdin());
        if (answered.incrementAndGet() == 1) {
          try {
            killAgentNow(agent);
          } finally {
            atKill.set(answered.get());
            kill.countDown();
          }
        }
        return c;
      })));
      assertTrue(kill.await(RECOVERY.toSeconds(), TimeUnit.SECONDS), "no DEL answered within " + RECOVERY);
      killedAt = System.nanoTime();
      answeredAtKill = atKill.get();
      lab.lab("kill-agent", String.valueOf(NODE)); // the launcher and the lab's pid files
      for (var e : dels.entrySet()) {
        first.put(e.getKey(), e.getValue().get());
      }
    } finally {
      runtime.shutdownNow();
    }
    assertTrue(answeredAtKill < PODS, "the kill hit DELs in flight: " + answeredAtKill + " of " + PODS + " answered");
    long recorded = pendingDelCount();

    lab.lab("start-agent", String.valueOf(NODE));
    long agentBack = System.nanoTime();
    // kubelet retries a failed DEL until it succeeds
    for (var e : first.entrySet()) {
      if (e.getValue().exitCode() != 0) {
        CniLab.Pod p = e.getKey();
        LabHarness.await(RECOVERY, "DEL of " + p.name() + " succeeds",
            () -> cni.call(NODE, "DEL", p, stdin()).exitCode() == 0);
      }
    }
    LabHarness.await(RECOVERY, "the recorded DELs replayed, no address and no veth left",
        () -> pendingDelCount() == 0 && cni.allocations(NODE).isEmpty() && cni.veths(NODE).isEmpty());
    long cleanAt = System.nanoTime();
    assertEquals(Map.of(), cni.allocations(NODE), "addresses still held for deleted pods");
    assertEquals(List.of(), cni.veths(NODE), "veths left on cni0");
    // Only now does the runtime remove the sandboxes.
    pods.forEach(cni::removeNamespace);

    // The freed addresses are handed out again, each once.
    Map<String, String> again = wire(pods("del-again-", 10));
    Map<String, String> held = cni.allocations(NODE);
    assertEquals(again, held, "IPAM holds exactly the new pods");
    assertNoAddressTwice(held);

    Map<Integer, Long> exits = new TreeMap<>();
    first.values().forEach(c -> exits.merge(c.exitCode(), 1L, Long::sum));
    System.out.println("BENCH chaos-del-kill answered-before-kill=" + answeredAtKill + " of " + PODS
        + " first-exit-codes=" + exits + " recorded-pending=" + recorded + " wired-before=" + wired.size());
    System.out.println("BENCH chaos-del-kill-ms-to-kill " + (killedAt - start) / 1_000_000);
    System.out.println("BENCH chaos-del-kill-agent-restart-ms " + (agentBack - killedAt) / 1_000_000);
    System.out.println("BENCH chaos-del-kill-clean-ms-after-restart " + (cleanAt - agentBack) / 1_000_000);
  }

  @Test
  @Order(2)
  void agentKilledDuringGcLeavesExactlyTheValidAttachments() throws Exception {
    agentRunning();
    // del-again-* from the first test are still wired: they are valid attachments too
    Map<String, String> before = cni.allocations(NODE);
    List<CniLab.Pod> pods = pods("gc-", 30);
    Map<String, String> wired = wire(pods);
    List<CniLab.Pod> survivors = pods.subList(0, 10);
    List<CniLab.Pod> lost = pods.subList(10, pods.size());
    lost.forEach(cni::removeNamespace); // the runtime lost these sandboxes; no DEL will come

    ObjectNode gc = cni.stdin(conflist, "1.1.0");
    ArrayNode valid = gc.putArray("cni.dev/valid-attachments");
    survivors.forEach(p -> valid.addObject().put("containerID", p.containerId()).put("ifname", "eth0"));
    before.keySet().forEach(k -> valid.addObject().put("containerID", k.substring(0, k.indexOf('/'))).put("ifname", "eth0"));
    Map<String, String> env = new LinkedHashMap<>(Map.of("CNI_COMMAND", "GC", "CNI_PATH", cni.cniPath,
        "CNI_CONTAINERID", "", "CNI_NETNS", "", "CNI_IFNAME", ""));

    ExecutorService runtime = Executors.newSingleThreadExecutor();
    CniLab.Call firstGc;
    long start = System.nanoTime();
    try {
      long agent = lab.pid("agent", NODE).orElseThrow();
      Future<CniLab.Call> call = runtime.submit(() -> cni.call(NODE, env, gc));
      // fired together: the kill lands before, during or after the agent's GC (printed below)
      killAgent(agent);
      firstGc = call.get();
      lab.lab("kill-agent", String.valueOf(NODE));
    } finally {
      runtime.shutdownNow();
    }
    long killedAt = System.nanoTime();
    lab.lab("start-agent", String.valueOf(NODE));
    long agentBack = System.nanoTime();
    // the runtime calls GC again until it succeeds
    AtomicInteger gcCalls = new AtomicInteger(1);
    if (firstGc.exitCode() != 0) {
      LabHarness.await(RECOVERY, "GC succeeds", () -> {
        gcCalls.incrementAndGet();
        return cni.call(NODE, env, gc).exitCode() == 0;
      });
    }
    Map<String, String> expected = new LinkedHashMap<>(before);
    survivors.forEach(p -> expected.put(p.containerId() + "/eth0", wired.get(p.containerId() + "/eth0")));
    Map<String, String> held = cni.allocations(NODE);
    assertEquals(new TreeMap<>(expected), new TreeMap<>(held),
        "after GC: exactly the valid attachments, each at its address");
    assertNoAddressTwice(held);
    assertEquals(expected.size(), cni.veths(NODE).size(), "one veth per valid attachment");
    // and the freed addresses go out again once each
    Map<String, String> again = wire(pods("gc-again-", 5));
    held = cni.allocations(NODE);
    assertEquals(expected.size() + again.size(), held.size());
    assertNoAddressTwice(held);

    System.out.println("BENCH chaos-gc-kill first-gc-exit=" + firstGc.exitCode() + " gc-calls=" + gcCalls.get()
        + " freed=" + lost.size() + " kept=" + expected.size());
    System.out.println("BENCH chaos-gc-kill-ms-to-kill " + (killedAt - start) / 1_000_000);
    System.out.println("BENCH chaos-gc-kill-agent-restart-ms " + (agentBack - killedAt) / 1_000_000);
  }
}

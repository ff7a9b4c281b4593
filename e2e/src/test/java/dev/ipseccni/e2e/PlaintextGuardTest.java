package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.e2e.TunnelLab.Background;
import dev.ipseccni.e2e.TunnelLab.UnderlayCapture;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * charon on node1 is killed (SIGKILL: its TUN device and its table-220 routes vanish)
 * while a pod on node1 keeps pinging a pod on node2 and node1 itself pings that pod too.
 * For the whole charon-down window a capture of node1's underlay interface and the
 * router's counters see not one packet with a pod address. charon is started again and
 * traffic comes back by itself: the agent is not touched (same process throughout).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PlaintextGuardTest {

  /** Each ping loop must have sent this many unanswered echoes while charon was down. */
  static final int UNANSWERED_IN_WINDOW = 20;
  static final Duration WINDOW = Duration.ofSeconds(120);
  static final Duration RECOVERY = Duration.ofSeconds(120);

  private LabHarness lab;
  private String remotePod;

  @BeforeAll
  void twoPodsOnTwoNodes() {
    lab = new LabHarness();
    lab.lab("up", "3");
    lab.lab("pod", "add", "1", "guard1");
    lab.lab("pod", "add", "2", "guard2");
    remotePod = TunnelLab.podAddress(lab, "guard2");
    MeshTest.awaitFullMesh(lab, 3);
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void plaintextToRemotePodIsDroppedWhileCharonIsDownAndTrafficResumesAfter() throws Exception {
    long agent = lab.pid("agent", 1).orElseThrow(() -> new AssertionError("node1 has no agent"));
    long charon = lab.pid("charon", 1).orElseThrow(() -> new AssertionError("node1 has no charon"));
    assertTrue(TunnelLab.pingOnce(lab, "pod-guard1", remotePod), "the tunnel works before");
    assertEquals("0", lab.lab("leaks").stdout().trim());

    long recoveryMillis;
    try (UnderlayCapture capture = UnderlayCapture.start(lab, 1, "guard");
         Background podPing = Background.start(lab, "pod-guard1", "ping", "-n", "-O", "-i", "0.2", "-W", "1", remotePod);
         Background nodePing = Background.start(lab, "1", "ping", "-n", "-O", "-i", "0.2", "-W", "1", remotePod)) {
      LabHarness.await(Duration.ofSeconds(60), "both ping loops answered through the tunnel",
          () -> replies(podPing) > 0 && replies(nodePing) > 0);

      ProcessHandle.of(charon).ifPresent(ProcessHandle::destroyForcibly);
      LabHarness.await(Duration.ofSeconds(30), "charon (pid " + charon + ") gone",
          () -> ProcessHandle.of(charon).map(p -> !p.isAlive()).orElse(true));
      // The userspace datapath is gone with it: without the guard, pod packets would now
      // follow node1's default route onto the underlay in clear.
      LabHarness.await(Duration.ofSeconds(30), "ipsec0 gone on node1",
          () -> lab.exec("1", "ip", "link", "show", "ipsec0").exitCode() != 0);
      int podBefore = unanswered(podPing);
      int nodeBefore = unanswered(nodePing);
      LabHarness.await(WINDOW, UNANSWERED_IN_WINDOW + " unanswered echoes from each loop while charon is down",
          () -> unanswered(podPing) - podBefore >= UNANSWERED_IN_WINDOW
              && unanswered(nodePing) - nodeBefore >= UNANSWERED_IN_WINDOW);

      lab.lab("start-charon", "1");
      long started = System.nanoTime();
      LabHarness.await(RECOVERY, "pod guard1 -> guard2 answers again after charon restarted",
          () -> TunnelLab.pingOnce(lab, "pod-guard1", remotePod));
      recoveryMillis = (System.nanoTime() - started) / 1_000_000;
      LabHarness.await(RECOVERY, "node1 -> guard2 answers again",
          () -> TunnelLab.pingOnce(lab, "1", remotePod));

      podPing.stop();
      nodePing.stop();
      capture.stop();
      List<String> clear = capture.packets("net " + TunnelLab.CLUSTER_CIDR);
      assertEquals(List.of(), clear, capture.describe() + ": packets with a pod address in clear");
      assertNotEquals(List.of(), capture.packets(TunnelLab.ESP_IN_UDP), capture.describe() + ": ESP-in-UDP before and after");
    }
    assertEquals("0", lab.lab("leaks").stdout().trim(), "the router saw no pod address");
    assertEquals(agent, lab.pid("agent", 1).orElseThrow(), "the same agent process throughout");
    System.out.println("BENCH charon-restart-recovery-ms " + recoveryMillis);
  }

  static int replies(Background ping) {
    return count(ping, "bytes from");
  }

  /** Echoes without an answer: timed out (dropped on the way), or refused at send (dropped in OUTPUT). */
  static int unanswered(Background ping) {
    return count(ping, "no answer yet") + count(ping, "sendmsg");
  }

  static int count(Background ping, String what) {
    try {
      return (int) (ping.stdout() + ping.stderr()).lines().filter(l -> l.contains(what)).count();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }
}

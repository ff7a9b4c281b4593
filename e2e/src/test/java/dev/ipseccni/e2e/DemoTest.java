package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code scripts/demo}, the sample's walkthrough, run non-interactively as a user would
 * (with the environment's {@code LAB_PREFIX}): it must exit 0, its summary must list every
 * check of the walkthrough as PASS and none as FAIL, and it must leave no namespace behind.
 * The build ran just before this module's tests, so the demo is told not to build again.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DemoTest {

  /** The whole walkthrough on a busy 2-core machine: generous, never a timing assertion. */
  private static final Duration DEADLINE = Duration.ofMinutes(45);
  private static final Pattern SUMMARY_LINE = Pattern.compile("^\\s+(PASS|FAIL)\\s+(\\S+)\\s+.*$");

  /** Every check of the walkthrough, in its order. */
  private static final List<String> CHECKS = List.of(
      "install-deps", "build",
      "nodes-ready", "mesh-up",
      "pods-sequential",
      "mesh-node-to-pod", "mesh-pod-to-pod", "mesh-pod-to-outside", "no-plaintext",
      "reboot-ready", "reboot-same-block", "reboot-pool-empty", "reboot-tunnels-rules", "others-kept-tunnel",
      "reboot-pods-from-2", "after-reboot-node-to-pod", "after-reboot-pod-to-pod", "after-reboot-pod-to-outside",
      "tunnel-restart", "no-plaintext-after-restart",
      "service-rules", "service-firewall-order", "nodeport-from-node", "nodeport-from-outside", "clusterip-from-pod",
      "no-plaintext-end",
      "teardown");

  private LabHarness lab;

  @BeforeAll
  void harness() {
    lab = new LabHarness();
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void walkthroughPassesEveryCheckAndLeavesNothingBehind() throws Exception {
    Path demo = lab.repoRoot().resolve("scripts/demo");
    Path out = Files.createTempFile("demo-out", ".txt");
    String output;
    int exit;
    try {
      // Output to a file, not a pipe: the pods' servers are background processes.
      Process p = new ProcessBuilder(demo.toString(), "--no-build")
          .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
          .redirectOutput(out.toFile()).redirectErrorStream(true).start();
      if (!p.waitFor(DEADLINE.toMinutes(), TimeUnit.MINUTES)) {
        p.destroy();
        if (!p.waitFor(2, TimeUnit.MINUTES)) {
          p.destroyForcibly();
        }
        fail("scripts/demo still running after " + DEADLINE + "\n" + Files.readString(out, StandardCharsets.UTF_8));
      }
      exit = p.exitValue();
      output = Files.readString(out, StandardCharsets.UTF_8);
    } finally {
      Files.deleteIfExists(out);
    }

    int summaryAt = output.indexOf("== Summary");
    assertTrue(summaryAt >= 0, "no summary in the demo's output:\n" + output);
    Map<String, String> results = new LinkedHashMap<>();
    for (String line : output.substring(summaryAt).lines().toList()) {
      Matcher m = SUMMARY_LINE.matcher(line);
      if (m.matches()) {
        results.merge(m.group(2), m.group(1), (a, b) -> a.equals("FAIL") || b.equals("FAIL") ? "FAIL" : "PASS");
      }
    }
    for (String check : CHECKS) {
      assertEquals("PASS", results.get(check), "check " + check + " in the summary:\n" + output);
    }
    assertTrue(results.values().stream().noneMatch("FAIL"::equals), "a check failed:\n" + output);
    assertTrue(output.contains(CHECKS.size() + " checks, " + CHECKS.size() + " passed, 0 failed"),
        "summary totals:\n" + output);
    assertEquals(0, exit, "scripts/demo exit status:\n" + output);

    String prefix = System.getenv().getOrDefault("LAB_PREFIX", "lab-");
    List<String> left = lab.namespaces().stream().filter(ns -> ns.startsWith(prefix)).toList();
    assertEquals(List.of(), left, "namespaces left after the demo's teardown");
  }

  @Test
  void refusesAnUnknownOption() throws IOException, InterruptedException {
    Process p = new ProcessBuilder(lab.repoRoot().resolve("scripts/demo").toString(), "--bogus")
        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    assertTrue(p.waitFor(1, TimeUnit.MINUTES), "demo --bogus did not exit");
    assertEquals(2, p.exitValue(), "exit status of an unknown option");
  }
}

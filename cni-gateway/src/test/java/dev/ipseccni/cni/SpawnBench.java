package dev.ipseccni.cni;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Per-exec latency for bench/cni/spawn-bench.sh: a command run from this JVM with
 * ProcessBuilder (the gateway's fallback), through ipsec-cni-spawner, and with python3's
 * subprocess.run as a reference, interleaved round by round, for /bin/true and for the
 * bridge plugin's VERSION. Each time covers start, stdin closed, stdout and stderr read,
 * exit. Prints a markdown table of medians and 90th percentiles.
 *
 * <p>Arguments: runs, the python3 helper (spawn_reference.py), a work directory, the bridge plugin.
 */
public final class SpawnBench {
  private SpawnBench() {}

  private static final Duration TIMEOUT = Duration.ofSeconds(30);
  private static final int WARM_UP = 20;

  private record Case(String name, List<String> argv, Map<String, String> env) {}

  private interface Method {
    long nanos(Case c) throws Exception;
  }

  public static void main(String[] args) throws Exception {
    int runs = Integer.parseInt(args[0]);
    Path helper = Path.of(args[1]);
    Path work = Path.of(args[2]);
    String bridge = args[3];
    List<Case> cases = List.of(
        new Case("/bin/true", List.of("/bin/true"), Map.of()),
        new Case("bridge, CNI_COMMAND=VERSION", List.of(bridge), Map.of("CNI_COMMAND", "VERSION")));

    ProcessSpawner forking = ProcessSpawner.direct();
    ProcessSpawner spawner = ProcessSpawner.extractedInto(work.resolve("spawner"));
    Process python = new ProcessBuilder("python3", helper.toString())
        .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    PrintWriter toPython = new PrintWriter(python.getOutputStream(), true, StandardCharsets.UTF_8);
    BufferedReader fromPython = new BufferedReader(new InputStreamReader(python.getInputStream(),
        StandardCharsets.UTF_8));

    Map<String, Method> methods = new LinkedHashMap<>();
    methods.put("ProcessBuilder (JVM fork)", c -> timed(() -> check(forking.run(c.argv(), c.env(), "", TIMEOUT))));
    methods.put("ipsec-cni-spawner", c -> timed(() -> check(spawner.run(c.argv(), c.env(), "", TIMEOUT))));
    methods.put("python3 subprocess.run", c -> {
      Map<String, String> env = new LinkedHashMap<>(System.getenv());
      env.keySet().removeIf(k -> k.startsWith("CNI_"));
      env.putAll(c.env());
      toPython.println(new JsonObject().put("argv", new JsonArray(new ArrayList<>(c.argv())))
          .put("env", new JsonObject(new LinkedHashMap<>(env))).encode());
      return Long.parseLong(fromPython.readLine().strip());
    });
    if (spawner.run(List.of("/bin/true"), Map.of(), "", TIMEOUT).exitCode() != 0 || spawner.pid().isEmpty()) {
      throw new IllegalStateException("the spawner did not start");
    }

    List<String> names = new ArrayList<>(methods.keySet());
    Map<String, long[]> samples = new LinkedHashMap<>();
    for (Case c : cases) {
      for (String m : names) {
        for (int i = 0; i < WARM_UP; i++) {
          methods.get(m).nanos(c);
        }
        samples.put(c.name() + "|" + m, new long[runs]);
      }
    }
    for (int round = 0; round < runs; round++) {
      for (Case c : cases) {
        for (int k = 0; k < names.size(); k++) {
          String m = names.get((round + k) % names.size()); // who goes first rotates
          samples.get(c.name() + "|" + m)[round] = methods.get(m).nanos(c);
        }
      }
    }
    toPython.close();
    python.waitFor();
    spawner.close();

    System.out.println("| command | " + String.join(" | ", names) + " |");
    System.out.println("| --- |" + " ---: |".repeat(names.size()));
    for (Case c : cases) {
      StringBuilder row = new StringBuilder("| " + c.name() + " |");
      for (String m : names) {
        long[] s = samples.get(c.name() + "|" + m).clone();
        Arrays.sort(s);
        row.append(String.format(" %.2f (p90 %.2f) |", s[s.length / 2] / 1e6, s[(int) (s.length * 0.9)] / 1e6));
      }
      System.out.println(row);
    }
    System.out.println();
    System.out.println("median (p90) ms per exec, " + runs + " interleaved runs each after " + WARM_UP
        + " warm-up runs; JVM: " + String.join(" ",
            java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()));
  }

  private interface Run {
    void run() throws Exception;
  }

  private static long timed(Run run) throws Exception {
    long began = System.nanoTime();
    run.run();
    return System.nanoTime() - began;
  }

  private static void check(BridgeDelegate.Outcome outcome) {
    if (!outcome.ok()) {
      throw new IllegalStateException("exit " + outcome.exitCode() + ": " + outcome.stderr());
    }
  }
}

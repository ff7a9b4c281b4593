package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Real commands through the real spawner: what they get, what comes back, and what happens when things die. */
class ProcessSpawnerTest {
  private static final Duration LONG = Duration.ofSeconds(30);

  @TempDir
  Path dir;
  private ProcessSpawner spawner;
  private final List<Long> strays = new ArrayList<>();

  @BeforeEach
  void start() {
    spawner = new ProcessSpawner(() -> ProcessSpawner.extract(dir.resolve("spawner")), System.getenv());
  }

  @AfterEach
  void stop() {
    spawner.close();
    for (long pid : strays) {
      ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
    }
  }

  private BridgeDelegate.Outcome sh(String script) {
    return spawner.run(List.of("sh", "-c", script), Map.of(), "", LONG);
  }

  @Test
  void theCommandsExitCodeComesBack() {
    assertEquals(0, spawner.run(List.of("/bin/true"), Map.of(), "", LONG).exitCode());
    assertEquals(7, sh("exit 7").exitCode());
    assertTrue(spawner.pid().isPresent(), "the commands ran through the spawner");
  }

  @Test
  void deathBySignalIsReportedAs128PlusTheSignal() {
    assertEquals(128 + 15, sh("kill -TERM $$").exitCode());
    assertEquals(128 + 9, sh("kill -KILL $$").exitCode());
  }

  @Test
  void stdinIsDeliveredAndClosed() {
    assertEquals("hello\n", spawner.run(List.of("cat"), Map.of(), "hello\n", LONG).stdout());
    String big = "0123456789abcdef".repeat(300_000 / 16);
    BridgeDelegate.Outcome echoed = spawner.run(List.of("cat"), Map.of(), big, LONG);
    assertEquals(0, echoed.exitCode());
    assertEquals(big, echoed.stdout());
  }

  @Test
  void largeStdoutAndStderrWrittenAtOnceBothComeBackWhole() {
    BridgeDelegate.Outcome outcome = sh("yes err | head -c 300000 >&2 & yes out | head -c 300000; wait");
    assertEquals(0, outcome.exitCode());
    assertEquals("out\n".repeat(75_000), outcome.stdout());
    assertEquals("err\n".repeat(75_000), outcome.stderr());
  }

  @Test
  void outputBeyondTheCapIsDroppedWithoutBlockingTheCommand() {
    BridgeDelegate.Outcome outcome = sh("head -c 3000000 /dev/zero; echo done >&2");
    assertEquals(0, outcome.exitCode());
    assertEquals(SpawnerProtocol.MAX_OUTPUT_BYTES, outcome.stdout().length());
    assertEquals("done\n", outcome.stderr());
  }

  @Test
  void theEnvironmentIsTheAgentsWithoutItsCniVariablesPlusTheGivenOnes() {
    Map<String, String> agent = Map.of("PATH", System.getenv("PATH"), "KEEP", "kept",
        "CNI_COMMAND", "ADD", "CNI_NETNS", "/run/netns/leak");
    Map<String, String> given = Map.of("CNI_COMMAND", "VERSION", "EXTRA", "a b=c");
    Map<String, String> expected = Map.of("PATH", System.getenv("PATH"), "KEEP", "kept",
        "CNI_COMMAND", "VERSION", "EXTRA", "a b=c");
    spawner.close();
    spawner = new ProcessSpawner(() -> ProcessSpawner.extract(dir.resolve("spawner")), agent);
    assertEquals(expected, environment(spawner.run(List.of("env"), given, "", LONG)));
    assertTrue(spawner.pid().isPresent());

    ProcessSpawner withoutSpawner = new ProcessSpawner(() -> dir.resolve("missing"), agent);
    assertEquals(expected, environment(withoutSpawner.run(List.of("env"), given, "", LONG)),
        "ProcessBuilder gives the same environment");
  }

  private static Map<String, String> environment(BridgeDelegate.Outcome env) {
    Map<String, String> vars = new HashMap<>();
    for (String line : env.stdout().split("\n")) {
      int eq = line.indexOf('=');
      vars.put(line.substring(0, eq), line.substring(eq + 1));
    }
    return vars;
  }

  @Test
  void aMissingCommandIsAClearErrorAndTheSpawnerLivesOn() {
    CniError missing = assertThrows(CniError.class,
        () -> spawner.run(List.of("/nonexistent/bridge", "x"), Map.of(), "", LONG));
    assertEquals(CniError.IO_FAILURE, missing.code());
    assertEquals("cannot run /nonexistent/bridge x", missing.getMessage());
    assertTrue(missing.details().contains("No such file or directory"), missing.details());
    long pid = spawner.pid().orElseThrow();

    CniError notOnPath = assertThrows(CniError.class,
        () -> spawner.run(List.of("no-such-command-here"), Map.of(), "", LONG));
    assertEquals(CniError.IO_FAILURE, notOnPath.code());
    assertEquals(0, sh("exit 0").exitCode());
    assertEquals(pid, spawner.pid().orElseThrow());
  }

  @Test
  void aTimeoutKillsTheCommandAndWhatItStarted() throws IOException {
    Path pids = dir.resolve("pids");
    long began = System.nanoTime();
    CniError late = assertThrows(CniError.class, () -> spawner.run(List.of("sh", "-c",
        "echo $$ > " + pids + "; sleep 300 & echo $! >> " + pids + "; wait"), Map.of(), "", Duration.ofSeconds(1)));
    assertEquals(CniError.DATAPATH_FAILED, late.code());
    assertTrue(late.getMessage().endsWith("did not finish in 1 s"), late.getMessage());
    assertTrue(System.nanoTime() - began < TimeUnit.SECONDS.toNanos(4), "the kill was answered at once");
    List<Long> started = Files.readAllLines(pids).stream().map(Long::parseLong).toList();
    strays.addAll(started);
    assertEquals(2, started.size());
    waitUntil(() -> started.stream().noneMatch(ProcessSpawnerTest::running), "the command and its child are killed");
    assertEquals(0, sh("exit 0").exitCode());
  }

  @Test
  void aBackgroundChildHoldingTheOutputDoesNotHoldTheAnswer() throws IOException {
    Path pids = dir.resolve("pids");
    long began = System.nanoTime();
    BridgeDelegate.Outcome outcome = sh("sleep 300 & echo $! > " + pids + "; echo started");
    strays.addAll(Files.readAllLines(pids).stream().map(Long::parseLong).toList());
    assertEquals(0, outcome.exitCode());
    assertEquals("started\n", outcome.stdout());
    assertTrue(System.nanoTime() - began < TimeUnit.SECONDS.toNanos(5));
  }

  @Test
  void concurrentRunsAreEachAnsweredWithTheirOwnOutcome() throws Exception {
    int runs = 110;
    ExecutorService pool = Executors.newFixedThreadPool(runs);
    try {
      CountDownLatch go = new CountDownLatch(1);
      List<Future<BridgeDelegate.Outcome>> outcomes = new ArrayList<>();
      for (int i = 0; i < runs; i++) {
        String n = Integer.toString(i);
        outcomes.add(pool.submit(() -> {
          go.await();
          return spawner.run(List.of("sh", "-c", "cat; printf %s \"$N\" >&2; exit $((N % 100))"),
              Map.of("N", n), "in-" + n, LONG);
        }));
      }
      go.countDown();
      for (int i = 0; i < runs; i++) {
        BridgeDelegate.Outcome outcome = outcomes.get(i).get(60, TimeUnit.SECONDS);
        assertEquals(new BridgeDelegate.Outcome(i % 100, "in-" + i, Integer.toString(i)), outcome);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aKilledSpawnerFailsTheCallInFlightAndTheNextCallStartsANewOne() throws Exception {
    Path pids = dir.resolve("pids");
    assertEquals(0, sh("exit 0").exitCode());
    long first = spawner.pid().orElseThrow();
    CompletableFuture<List<Long>> reported = pidsReportedThrough(pids);
    CompletableFuture<BridgeDelegate.Outcome> inFlight = CompletableFuture.supplyAsync(
        () -> sh("echo $$ > " + pids + "; exec sleep 60"));
    // the spawner is killed, not its child: that one is left to end on its own
    strays.addAll(reported.get(10, TimeUnit.SECONDS));

    ProcessHandle.of(first).orElseThrow().destroyForcibly();
    ExecutionException failed = assertThrows(ExecutionException.class, () -> inFlight.get(10, TimeUnit.SECONDS));
    CniError error = (CniError) failed.getCause();
    assertEquals(CniError.IO_FAILURE, error.code());
    assertTrue(error.getMessage().startsWith(ProcessSpawner.BINARY + " (pid " + first + ") died while running"),
        error.getMessage());
    assertTrue(error.getMessage().endsWith("the command's outcome is unknown"), error.getMessage());

    assertEquals("again\n", sh("echo again").stdout());
    assertNotEquals(first, spawner.pid().orElseThrow());
  }

  @Test
  void closingKillsWhatStillRunsAndLaterCommandsRunFromTheJvm() throws Exception {
    Path pids = dir.resolve("pids");
    CompletableFuture<List<Long>> reported = pidsReportedThrough(pids);
    CompletableFuture<BridgeDelegate.Outcome> inFlight = CompletableFuture.supplyAsync(
        () -> sh("sleep 300 & echo $$ $! > " + pids + "; wait"));
    List<Long> started = reported.get(10, TimeUnit.SECONDS);
    strays.addAll(started);
    assertEquals(2, started.size(), "the command and its child run");
    long pid = spawner.pid().orElseThrow();

    spawner.close();
    ExecutionException failed = assertThrows(ExecutionException.class, () -> inFlight.get(10, TimeUnit.SECONDS));
    assertEquals(CniError.IO_FAILURE, ((CniError) failed.getCause()).code());
    assertFalse(running(pid), "the spawner exited");
    waitUntil(() -> started.stream().noneMatch(ProcessSpawnerTest::running), "the command and its child are killed");

    assertEquals("after\n", sh("echo after").stdout());
    assertTrue(spawner.pid().isEmpty());
  }

  @Test
  void withoutAStartableSpawnerCommandsRunFromTheJvm() throws IOException {
    Path notExecutable = Files.writeString(dir.resolve("not-executable"), "#!/bin/sh\n");
    Files.setPosixFilePermissions(notExecutable, PosixFilePermissions.fromString("rw-------"));
    Path exitsAtOnce = Files.writeString(dir.resolve("exits-at-once"), "#!/bin/sh\nexit 3\n");
    Files.setPosixFilePermissions(exitsAtOnce, PosixFilePermissions.fromString("rwx------"));
    for (Path binary : List.of(dir.resolve("missing"), notExecutable, exitsAtOnce)) {
      ProcessSpawner fallback = new ProcessSpawner(() -> binary, System.getenv());
      BridgeDelegate.Outcome outcome = fallback.run(List.of("sh", "-c", "cat; exit 4"), Map.of(), "in", LONG);
      assertEquals(new BridgeDelegate.Outcome(4, "in", ""), outcome, binary.toString());
      assertTrue(fallback.pid().isEmpty());
      fallback.close();
    }
    assertEquals("direct\n", ProcessSpawner.direct().run(List.of("echo", "direct"), Map.of(), "", LONG).stdout());
  }

  @Test
  void aSpawnerThatNeverSaysReadyIsKilledAndCommandsRunFromTheJvm() throws IOException {
    Path pid = dir.resolve("pid");
    Path silent = Files.writeString(dir.resolve("silent"), "#!/bin/sh\necho $$ > " + pid + "\nexec sleep 60\n");
    Files.setPosixFilePermissions(silent, PosixFilePermissions.fromString("rwx------"));
    ProcessSpawner fallback = new ProcessSpawner(() -> silent, System.getenv());
    try {
      assertEquals("still\n", fallback.run(List.of("echo", "still"), Map.of(), "", LONG).stdout());
      long silentPid = readPids(pid).get(0);
      strays.add(silentPid);
      waitUntil(() -> !running(silentPid), "the silent spawner is killed");
    } finally {
      fallback.close();
    }
  }

  /**
   * The fallback path (no spawner): a command run from the JVM in the background, so that a
   * hang of the old sequential reads shows as a failed deadline here, not a hung test.
   */
  private CompletableFuture<BridgeDelegate.Outcome> direct(String script, String stdin, Duration timeout) {
    ProcessSpawner direct = ProcessSpawner.direct();
    return CompletableFuture.supplyAsync(() -> {
      try (direct) {
        return direct.run(List.of("sh", "-c", script), Map.of(), stdin, timeout);
      }
    });
  }

  private static CniError failure(CompletableFuture<BridgeDelegate.Outcome> run) {
    ExecutionException failed = assertThrows(ExecutionException.class, () -> run.get(60, TimeUnit.SECONDS),
        "the timeout ended the run");
    return (CniError) failed.getCause();
  }

  /** What a command that hangs past a 2 s timeout left: the PIDs it reported, and the run's error. */
  private record Hung(List<Long> pids, CniError error) {}

  /** Runs a script without spawner that writes its PIDs to the FIFO named PIDS, then hangs. */
  private Hung hangsPastTheTimeout(String script) throws Exception {
    Path pids = dir.resolve("pids");
    CompletableFuture<List<Long>> reported = pidsReportedThrough(pids);
    CompletableFuture<BridgeDelegate.Outcome> run = direct(script.replace("PIDS", pids.toString()), "",
        Duration.ofSeconds(2));
    List<Long> started = reported.get(30, TimeUnit.SECONDS);
    strays.addAll(started);
    return new Hung(started, failure(run));
  }

  @Test
  void withoutSpawnerAHungCommandWithItsStreamsOpenIsKilledAtTheTimeout() throws Exception {
    Hung hung = hangsPastTheTimeout("echo $$ > PIDS; echo partial; sleep 300");
    assertEquals(CniError.DATAPATH_FAILED, hung.error().code());
    assertTrue(hung.error().getMessage().endsWith("did not finish in 2 s"), hung.error().getMessage());
    waitUntil(() -> hung.pids().stream().noneMatch(ProcessSpawnerTest::running), "the hung command is killed");
  }

  @Test
  void withoutSpawnerAGrandchildHoldingThePipeIsKilledWithItsProcessGroup() throws Exception {
    // the grandchild keeps stdout and stderr open; the command waits for it
    Hung hung = hangsPastTheTimeout("sleep 300 & echo $$ $! > PIDS; wait");
    assertEquals(2, hung.pids().size(), "the command and its child run");
    assertEquals(CniError.DATAPATH_FAILED, hung.error().code());
    waitUntil(() -> hung.pids().stream().noneMatch(ProcessSpawnerTest::running),
        "the command and the grandchild holding its pipes are killed");
  }

  @Test
  void withoutSpawnerAnExitedCommandIsAnsweredThoughABackgroundChildHoldsItsOutput() throws Exception {
    Path pids = dir.resolve("pids");
    BridgeDelegate.Outcome outcome;
    try {
      outcome = direct("sleep 300 & echo $! > " + pids + "; echo started; echo warned >&2", "", LONG)
          .get(20, TimeUnit.SECONDS);
    } finally {
      strays.addAll(readPids(pids));
    }
    assertEquals(new BridgeDelegate.Outcome(0, "started\n", "warned\n"), outcome);
  }

  @Test
  void withoutSpawnerAFullStderrPipeDoesNotBlockTheCommand() throws Exception {
    // a megabyte on stderr before anything on stdout: read in turn, stdout first, this never ends
    BridgeDelegate.Outcome outcome = direct("head -c 1000000 /dev/zero | tr '\\0' e >&2; cat; echo done",
        "in\n", LONG).get(30, TimeUnit.SECONDS);
    assertEquals(0, outcome.exitCode());
    assertEquals("in\ndone\n", outcome.stdout());
    assertEquals(1_000_000, outcome.stderr().length());
  }

  @Test
  void withoutSpawnerAMissingCommandCannotBeRun() {
    CniError error = assertThrows(CniError.class, () -> ProcessSpawner.direct()
        .run(List.of("no-such-command-here"), Map.of(), "", LONG));
    assertEquals(CniError.IO_FAILURE, error.code());
    assertEquals(0, ProcessSpawner.direct().run(List.of("/bin/true"), Map.of(), "", LONG).exitCode());
  }

  @Test
  void theShippedSpawnerIsWrittenForTheAgentOnly() throws IOException {
    assertEquals(0, sh("exit 0").exitCode());
    Path written = dir.resolve("spawner");
    assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(written)));
    assertEquals("rwx------", PosixFilePermissions.toString(
        Files.getPosixFilePermissions(written.resolve(ProcessSpawner.BINARY))));
    try (var files = Files.list(written)) {
      assertEquals(List.of(written.resolve(ProcessSpawner.BINARY)), files.toList(), "no temporary file is left");
    }
  }

  /**
   * Makes fifo a named pipe and reads what one writer reports through it: the future completes
   * when the command has written its PIDs and closed the pipe (an event, not a poll).
   */
  private static CompletableFuture<List<Long>> pidsReportedThrough(Path fifo) throws Exception {
    assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
    return CompletableFuture.supplyAsync(() -> {
      try {
        return java.util.Arrays.stream(Files.readString(fifo).trim().split("\\s+")).map(Long::parseLong).toList();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
  }

  private static List<Long> readPids(Path file) {
    try {
      return Files.readAllLines(file).stream().filter(l -> !l.isBlank()).map(Long::parseLong).toList();
    } catch (IOException e) {
      return List.of();
    }
  }

  /** Alive and not a zombie: a killed child of an exited parent may wait a moment for its reaper. */
  static boolean running(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      char state = stat.charAt(stat.lastIndexOf(')') + 2);
      return state != 'Z' && state != 'X';
    } catch (IOException gone) {
      return false;
    }
  }

  /**
   * Polls with a deadline: Linux gives no event for the end of a process that is not our
   * child (the commands' own children here), and a killed one may linger as a zombie.
   */
  static void waitUntil(BooleanSupplier condition, String what) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not within 10 s: " + what);
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted waiting for: " + what);
      }
    }
  }
}

package dev.ipseccni.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.StreamSupport;

/**
 * Drives the netns lab ({@code scripts/lab}) for a test: brings nodes up and down, runs
 * commands inside node namespaces, and reads each agent's {@code /state} from inside its
 * node, the way a neighbour on the underlay would. Everything waits by polling against a
 * deadline; nothing sleeps to synchronise.
 */
final class LabHarness implements AutoCloseable {

  static final ObjectMapper JSON = new ObjectMapper();
  /** How long the lab script may take for one command (up of several JVMs on a busy machine). */
  static final Duration COMMAND_DEADLINE = Duration.ofMinutes(6);
  static final int API_PORT = 9750;

  /** The output and exit status of one command. */
  record Result(int exitCode, String stdout, String stderr) {
    Result orFail(String what) {
      if (exitCode != 0) {
        throw new AssertionError(what + " failed with exit " + exitCode + "\nstdout:\n" + stdout + "\nstderr:\n" + stderr);
      }
      return this;
    }
  }

  private final Path repoRoot;
  private final Path script;

  LabHarness() {
    repoRoot = Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
    script = repoRoot.resolve("scripts/lab");
    if (!Files.isExecutable(script)) {
      throw new IllegalStateException("no lab script at " + script);
    }
    String uid = run(List.of("id", "-u")).stdout().trim();
    if (!uid.equals("0")) {
      throw new IllegalStateException("the e2e tests create network namespaces and mounts: run them as root");
    }
  }

  Path repoRoot() {
    return repoRoot;
  }

  /** Runs {@code scripts/lab ARGS}; fails the test if it exits non-zero. */
  Result lab(String... args) {
    return labResult(args).orFail("lab " + String.join(" ", args));
  }

  /** Runs {@code scripts/lab ARGS} and returns whatever happened. */
  Result labResult(String... args) {
    List<String> command = new ArrayList<>();
    command.add(script.toString());
    command.addAll(List.of(args));
    return run(command);
  }

  /** Runs {@code scripts/lab ARGS} with extra environment (e.g. LAB_AGENT_CONFIG_EXTRA); fails if it exits non-zero. */
  Result lab(java.util.Map<String, String> env, String... args) {
    List<String> command = new ArrayList<>(List.of(script.toString()));
    command.addAll(List.of(args));
    return run(command, env, null).orFail("lab " + String.join(" ", args) + " with " + env);
  }

  /** Runs a command in a lab namespace: a node index ("1") or router / outside / underlay. */
  Result exec(String where, String... command) {
    List<String> args = new ArrayList<>(List.of("exec", where));
    args.addAll(List.of(command));
    return labResult(args.toArray(String[]::new));
  }

  /** Runs a command in a lab namespace with the given environment and standard input. */
  Result exec(String where, java.util.Map<String, String> env, String stdin, String... command) {
    List<String> args = new ArrayList<>(List.of(script.toString(), "exec", where));
    args.addAll(List.of(command));
    return run(args, env, stdin);
  }

  Path labDir() {
    return Path.of(lab("dir").stdout().trim());
  }

  Path nodeDir(int node) {
    return Path.of(lab("dir", String.valueOf(node)).stdout().trim());
  }

  static String address(int node) {
    return "192.0.2." + (10 + node);
  }

  static String nodeName(int node) {
    return "node" + node;
  }

  /** The PID the lab recorded for node's agent or charon, if that process is running. */
  Optional<Long> pid(String what, int node) {
    Result r = labResult("pid", what, String.valueOf(node));
    return r.exitCode() == 0 ? Optional.of(Long.parseLong(r.stdout().trim())) : Optional.empty();
  }

  /** The node's /state as its agent serves it on the underlay, or empty if it does not answer. */
  Optional<JsonNode> state(int node) {
    Result r = exec(String.valueOf(node), "curl", "-s", "-f", "-m", "3",
        "http://" + address(node) + ":" + API_PORT + "/state");
    if (r.exitCode() != 0 || r.stdout().isBlank()) {
      return Optional.empty();
    }
    try {
      return Optional.of(JSON.readTree(r.stdout()));
    } catch (IOException e) {
      throw new AssertionError("node" + node + " /state is not JSON: " + r.stdout(), e);
    }
  }

  /** Polls node's /state until it satisfies the condition; fails with the last state seen. */
  JsonNode awaitState(int node, Duration deadline, String what, Predicate<JsonNode> condition) {
    long end = System.nanoTime() + deadline.toNanos();
    JsonNode last = null;
    do {
      Optional<JsonNode> state = state(node);
      if (state.isPresent()) {
        last = state.get();
        if (condition.test(last)) {
          return last;
        }
      }
      pause(Duration.ofMillis(250));
    } while (System.nanoTime() < end);
    throw new AssertionError("node" + node + ": " + what + " not seen within " + deadline.toSeconds()
        + " s; last /state: " + last);
  }

  static List<String> members(JsonNode state) {
    return StreamSupport.stream(state.path("members").spliterator(), false).map(JsonNode::asText).sorted().toList();
  }

  static List<JsonNode> events(JsonNode state, String address) {
    return StreamSupport.stream(state.path("recentEvents").spliterator(), false)
        .filter(e -> e.path("address").asText().equals(address)).toList();
  }

  /** Names of the network namespaces that currently exist on the machine. */
  List<String> namespaces() {
    return run(List.of("ip", "netns", "list")).orFail("ip netns list").stdout().lines()
        .map(l -> l.split("\\s+")[0]).filter(s -> !s.isEmpty()).toList();
  }

  /** Polls until the condition holds; fails with the message otherwise. */
  static void await(Duration deadline, String what, java.util.function.BooleanSupplier condition) {
    long end = System.nanoTime() + deadline.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError(what + " not reached within " + deadline.toSeconds() + " s");
      }
      pause(Duration.ofMillis(100));
    }
  }

  /** Polling interval between two looks at the lab, never a synchronisation point. */
  private static void pause(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  /** Tears the whole lab down (idempotent): every test class ends here, passed or not. */
  @Override
  public void close() {
    lab("down");
  }

  private static Result run(List<String> command) {
    return run(command, java.util.Map.of(), null);
  }

  private static Result run(List<String> command, java.util.Map<String, String> env, String stdin) {
    try {
      // Output goes to files: the lab starts background processes, and a pipe they
      // inherited by mistake would keep a reader waiting for ever.
      Path out = Files.createTempFile("lab-out", ".txt");
      Path err = Files.createTempFile("lab-err", ".txt");
      try {
        Path in = Files.createTempFile("lab-in", ".txt");
        Files.writeString(in, stdin == null ? "" : stdin, StandardCharsets.UTF_8);
        ProcessBuilder builder = new ProcessBuilder(command).redirectInput(in.toFile())
            .redirectOutput(out.toFile()).redirectError(err.toFile());
        builder.environment().putAll(env);
        Process p;
        try {
          p = builder.start();
        } finally {
          Files.deleteIfExists(in);
        }
        if (!p.waitFor(COMMAND_DEADLINE.toSeconds(), TimeUnit.SECONDS)) {
          p.destroyForcibly();
          throw new AssertionError(String.join(" ", command) + " still running after " + COMMAND_DEADLINE
              + "\nstderr:\n" + Files.readString(err, StandardCharsets.UTF_8));
        }
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
            Files.readString(err, StandardCharsets.UTF_8));
      } finally {
        Files.deleteIfExists(out);
        Files.deleteIfExists(err);
      }
    } catch (IOException e) {
      throw new AssertionError("cannot run " + command, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted running " + command, e);
    }
  }
}

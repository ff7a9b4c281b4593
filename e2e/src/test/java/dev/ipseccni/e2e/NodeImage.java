package dev.ipseccni.e2e;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The node image built from the repository's Containerfile with podman, on a Debian 12
 * root made here by mmdebstrap and imported as the FROM image: no registry is asked for
 * anything. podman keeps its store, state and configuration in a directory of its own,
 * which {@link #close()} removes with every container and mount in it.
 */
final class NodeImage implements AutoCloseable {

  static final String BASE = "localhost/ipsec-cni-base:bookworm";
  static final String MIRROR = "http://deb.debian.org/debian";
  private static final Duration STEP = Duration.ofMinutes(8);

  private final Path work;
  private final List<String> containers = new ArrayList<>();
  private Path mountedRoot;
  private String mountedImage;

  NodeImage(Path work) throws IOException {
    this.work = work;
    Files.createDirectories(work.resolve("net.d"));
    Files.createDirectories(work.resolve("tmp"));
    Files.writeString(work.resolve("containers.conf"), String.join("\n",
        "[network]",
        "network_backend = \"cni\"",
        "network_config_dir = \"" + work.resolve("net.d") + "\"",
        "[engine]",
        "runtime = \"runc\"",
        "cgroup_manager = \"cgroupfs\"",
        "events_logger = \"file\"",
        "events_logfile_path = \"" + work.resolve("events.log") + "\"",
        ""));
  }

  /** mmdebstrap (minbase bookworm) → podman import → podman build of the Containerfile; tags it as each name. */
  void build(Path repoRoot, Path containerfile, List<String> tags) {
    Path base = work.resolve("base.tar");
    run(List.of("mmdebstrap", "--variant=minbase", "--mode=root", "bookworm", base.toString(), MIRROR))
        .orFail("mmdebstrap of the base root");
    podman("import", base.toString(), BASE).orFail("podman import of the base root");
    List<String> build = new ArrayList<>(List.of("build", "--from", BASE, "--network", "host", "--pull=never",
        "-f", containerfile.toString()));
    for (String tag : tags) {
      build.addAll(List.of("-t", tag));
    }
    build.add(repoRoot.toString());
    podman(build.toArray(String[]::new)).orFail("podman build of " + containerfile);
  }

  /** The image's root filesystem, mounted read-only for inspection (unmounted by close). */
  Path root(String image) {
    if (mountedRoot == null) {
      mountedRoot = Path.of(podman("image", "mount", image).orFail("podman image mount " + image).stdout().strip());
      mountedImage = image;
    }
    return mountedRoot;
  }

  /** The image's PATH (its config's Env), as a container started from it has it. */
  List<String> path(String image) {
    String env = podman("image", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", image)
        .orFail("podman image inspect").stdout();
    return env.lines().filter(l -> l.startsWith("PATH=")).findFirst()
        .map(l -> List.of(l.substring(5).split(":"))).orElse(List.of("/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
            "/usr/bin", "/sbin", "/bin"));
  }

  /**
   * Where a command resolves inside the image (as its PATH lookup would), symlinks followed
   * within the image's root: the path inside the image, or empty if it is not there.
   */
  Optional<String> which(String image, String command) {
    List<String> candidates = command.contains("/") ? List.of(command)
        : path(image).stream().map(d -> d + "/" + command).toList();
    for (String candidate : candidates) {
      Optional<String> real = resolve(root(image), candidate);
      if (real.isPresent() && Files.isRegularFile(root(image).resolve(real.get().substring(1)))
          && Files.isExecutable(root(image).resolve(real.get().substring(1)))) {
        return real;
      }
    }
    return Optional.empty();
  }

  /** The file's text inside the image. */
  String read(String image, String pathInImage) {
    try {
      return Files.readString(root(image).resolve(pathInImage.substring(1)), StandardCharsets.ISO_8859_1);
    } catch (IOException e) {
      throw new AssertionError("cannot read " + pathInImage + " in " + image, e);
    }
  }

  private static Optional<String> resolve(Path root, String path) {
    String current = path;
    for (int hops = 0; hops < 40; hops++) {
      Path onHost = root.resolve(current.substring(1));
      if (!Files.isSymbolicLink(onHost)) {
        return Files.exists(onHost, LinkOption.NOFOLLOW_LINKS) ? Optional.of(current) : Optional.empty();
      }
      try {
        String target = Files.readSymbolicLink(onHost).toString();
        current = target.startsWith("/") ? target
            : Path.of(current).getParent().resolve(target).normalize().toString();
      } catch (IOException e) {
        return Optional.empty();
      }
    }
    return Optional.empty();
  }

  /** Runs a container in the background (podman run -d ARGS); it is removed by close. */
  void start(String name, List<String> runArgs) {
    containers.add(name);
    List<String> args = new ArrayList<>(List.of("run", "-d", "--name", name));
    args.addAll(runArgs);
    podman(args.toArray(String[]::new)).orFail("podman run " + name);
  }

  /** Runs a container to its end (an init container) and returns its exit and output. */
  LabHarness.Result runToEnd(String name, List<String> runArgs) {
    containers.add(name);
    List<String> args = new ArrayList<>(List.of("run", "--name", name));
    args.addAll(runArgs);
    return podman(args.toArray(String[]::new));
  }

  boolean running(String name) {
    return podman("container", "inspect", "--format", "{{.State.Running}}", name).stdout().strip().equals("true");
  }

  String logs(String name) {
    LabHarness.Result r = podman("logs", "--tail", "40", name);
    return "--- podman logs " + name + ":\n" + r.stdout() + r.stderr();
  }

  /** podman run --rm ARGS: a command of the image, run once in a container removed on exit. */
  LabHarness.Result runOnce(List<String> runArgs) {
    List<String> args = new ArrayList<>(List.of("run", "--rm"));
    args.addAll(runArgs);
    return podman(args.toArray(String[]::new));
  }

  LabHarness.Result podman(String... args) {
    List<String> command = new ArrayList<>(List.of("podman", "--root", work.resolve("root").toString(),
        "--runroot", work.resolve("runroot").toString(), "--tmpdir", work.resolve("tmp").toString(),
        "--storage-driver", "overlay"));
    command.addAll(List.of(args));
    return run(command);
  }

  /** Containers by name, the image mount, podman's mounts under its store, then the whole directory. */
  @Override
  public void close() throws IOException {
    for (String name : containers) {
      podman("rm", "-f", "-t", "5", name);
    }
    if (mountedImage != null) {
      podman("image", "unmount", mountedImage);
    }
    // overlay layers and the store's own private bind mount: deepest first
    List<String> mounts = Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
        .map(l -> l.split(" ")[4]).filter(m -> m.startsWith(work.toString())).sorted(Comparator.reverseOrder()).toList();
    for (String m : mounts) {
      run(List.of("umount", "-l", m));
    }
    if (Files.exists(work)) {
      try (Stream<Path> walk = Files.walk(work)) {
        for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }

  private LabHarness.Result run(List<String> command) {
    try {
      Path out = Files.createTempFile("image-out", ".txt");
      Path err = Files.createTempFile("image-err", ".txt");
      try {
        ProcessBuilder builder = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
            .redirectOutput(out.toFile()).redirectError(err.toFile());
        builder.environment().putAll(Map.of("CONTAINERS_CONF", work.resolve("containers.conf").toString()));
        Process p = builder.start();
        if (!p.waitFor(STEP.toSeconds(), TimeUnit.SECONDS)) {
          p.destroyForcibly();
          throw new AssertionError(String.join(" ", command) + " still running after " + STEP
              + "\nstderr:\n" + Files.readString(err, StandardCharsets.UTF_8));
        }
        return new LabHarness.Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
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

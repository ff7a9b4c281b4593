package dev.ipseccni.cni;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The two plugin binaries, run as a runtime runs them: a process with CNI_* in its
 * environment and the config on stdin. The Java one runs from a directory that holds only
 * the plugin package's classes, which proves it needs nothing but the JDK.
 */
enum PluginClient {
  C, JAVA;

  record Run(int exitCode, String stdout) {
    JsonObject json() {
      return new JsonObject(stdout);
    }
  }

  private static Path javaOnlyClasses;

  List<String> command() {
    return switch (this) {
      case C -> List.of(System.getProperty("ipsecCni.cPlugin", "target/ipsec-cni"));
      case JAVA -> List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", pluginOnlyClasspath().toString(),
          "dev.ipseccni.cni.plugin.IpsecCniPlugin");
    };
  }

  Run run(Map<String, String> env, String stdin) {
    ProcessBuilder pb = new ProcessBuilder(command());
    Map<String, String> processEnv = pb.environment();
    processEnv.keySet().removeIf(k -> k.startsWith("CNI_"));
    processEnv.putAll(env);
    try {
      Process p = pb.redirectError(ProcessBuilder.Redirect.INHERIT).start();
      try (var in = p.getOutputStream()) {
        in.write(stdin.getBytes(StandardCharsets.UTF_8));
      }
      // A plugin that never answers must fail the test, not hang it.
      var out = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
        try {
          return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
      try {
        String stdout = out.get(90, java.util.concurrent.TimeUnit.SECONDS);
        return new Run(p.waitFor(), stdout);
      } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
        p.destroyForcibly();
        throw new AssertionError(this + " plugin " + env.get("CNI_COMMAND") + " gave no answer: " + e, e);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  static Map<String, String> env(String... kv) {
    Map<String, String> env = new HashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      env.put(kv[i], kv[i + 1]);
    }
    return env;
  }

  private static synchronized Path pluginOnlyClasspath() {
    if (javaOnlyClasses == null) {
      try {
        Path classes = Path.of(System.getProperty("ipsecCni.pluginClasses", "target/classes"));
        Path pkg = Path.of("dev", "ipseccni", "cni", "plugin");
        // Beside the build's classes (target/), so a clean build removes it.
        Path dir = classes.toAbsolutePath().getParent().resolve("plugin-only-classes");
        Files.createDirectories(dir.resolve(pkg));
        try (Stream<Path> files = Files.list(classes.resolve(pkg))) {
          for (Path f : files.toList()) {
            Files.copy(f, dir.resolve(pkg).resolve(f.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
          }
        }
        javaOnlyClasses = dir;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return javaOnlyClasses;
  }
}

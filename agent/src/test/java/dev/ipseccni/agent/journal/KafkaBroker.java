package dev.ipseccni.agent.journal;

import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * A real single-node Kafka 4 broker (KRaft, broker + controller) in a child JVM, its
 * classpath assembled by Maven from Central artifacts: the agent keeps kafka-clients
 * 3.7.1, which must talk to it. Stop and start again on the same port and log dir to
 * simulate an outage. Public, and in the agent's test-jar, for the e2e lab, which runs it
 * inside a network namespace (a launcher prefix such as {@code ip netns exec NS}).
 */
public final class KafkaBroker implements AutoCloseable {
  public static final String KAFKA_VERSION = System.getProperty("kafka.broker.version", "4.4.0");

  private final Path dir;
  private final String host;
  private final int port;
  private final int controllerPort;
  private final String classpath;
  private final Path logFile;
  private final List<String> launcher;
  private final BooleanSupplier listening;
  private Process process;

  /** A broker on this machine's network, listening on host:port. */
  public KafkaBroker(Path dir, String host, int port, int controllerPort) throws Exception {
    this(dir, host, port, controllerPort, List.of(), null);
  }

  /**
   * @param launcher command prefix the broker's JVMs are started with (e.g. {@code ip netns exec NS},
   *     which execs: the process is the JVM itself); empty for none
   * @param listening whether the broker's port accepts connections, seen from where its clients are;
   *     null: a connection from this JVM
   */
  public KafkaBroker(Path dir, String host, int port, int controllerPort, List<String> launcher,
      BooleanSupplier listening) throws Exception {
    this.launcher = List.copyOf(launcher);
    this.listening = listening != null ? listening : this::accepts;
    this.dir = dir;
    this.host = host;
    this.port = port;
    this.controllerPort = controllerPort;
    this.classpath = brokerClasspath(dir);
    this.logFile = dir.resolve("broker.log");
    Path props = dir.resolve("server.properties");
    Files.writeString(props, String.join("\n",
        "process.roles=broker,controller",
        "node.id=1",
        "controller.quorum.voters=1@" + host + ":" + controllerPort,
        "listeners=PLAINTEXT://" + host + ":" + port + ",CONTROLLER://" + host + ":" + controllerPort,
        "advertised.listeners=PLAINTEXT://" + host + ":" + port,
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs=" + dir.resolve("data"),
        "num.partitions=3",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "min.insync.replicas=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        ""));
    String clusterId = org.apache.kafka.common.Uuid.randomUuid().toString();
    Process format = java("kafka.tools.StorageTool", "format", "-t", clusterId, "-c", props.toString());
    if (!format.waitFor(120, TimeUnit.SECONDS) || format.exitValue() != 0) {
      throw new IllegalStateException("kafka storage format failed: " + Files.readString(logFile));
    }
  }

  public String bootstrap() {
    return host + ":" + port;
  }

  /** Starts the broker and waits until its port accepts connections. */
  public void start() throws Exception {
    process = java("kafka.Kafka", dir.resolve("server.properties").toString());
    long end = System.nanoTime() + Duration.ofSeconds(90).toNanos();
    while (!listening.getAsBoolean()) {
      if (!process.isAlive()) {
        throw new IllegalStateException("kafka broker exited: " + tail());
      }
      if (System.nanoTime() > end) {
        throw new IllegalStateException("kafka broker not listening within 90 s: " + tail());
      }
      Thread.sleep(100); // poll interval
    }
  }

  /** Stops the broker (SIGTERM, then SIGKILL) and waits until it is gone. */
  public void stop() throws InterruptedException {
    if (process == null) {
      return;
    }
    process.destroy();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }
    process = null;
  }

  private boolean accepts() {
    try (Socket s = new Socket(host, port)) {
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** The running broker's PID (the JVM's), if it runs. */
  public java.util.OptionalLong pid() {
    return process != null && process.isAlive() ? java.util.OptionalLong.of(process.pid()) : java.util.OptionalLong.empty();
  }

  /** What the broker and its storage tool printed. */
  public Path logFile() {
    return logFile;
  }

  /** The last 40 lines of the broker's log, for failure messages. */
  public String tail() throws IOException {
    List<String> lines = Files.readAllLines(logFile, StandardCharsets.UTF_8);
    return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
  }

  private Process java(String mainClass, String... args) throws IOException {
    List<String> command = new ArrayList<>(launcher);
    command.addAll(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Xmx384m", "-cp", classpath, mainClass));
    command.addAll(List.of(args));
    return new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile())).start();
  }

  /** Resolves kafka_2.13 (and an SLF4J binding, so the broker logs) with Maven; cached per version. */
  static String brokerClasspath(Path work) throws Exception {
    Path cache = Path.of(System.getProperty("java.io.tmpdir"), "ipsec-cni-kafka-" + KAFKA_VERSION + ".classpath");
    if (Files.exists(cache)) {
      String cp = Files.readString(cache).trim();
      if (List.of(cp.split(":")).stream().allMatch(p -> Files.exists(Path.of(p)))) {
        return cp;
      }
    }
    Path pomDir = Files.createDirectories(work.resolve("broker-pom"));
    Files.writeString(pomDir.resolve("pom.xml"), """
        <project xmlns="http://maven.apache.org/POM/4.0.0">
          <modelVersion>4.0.0</modelVersion>
          <groupId>dev.ipseccni.test</groupId>
          <artifactId>kafka-broker-classpath</artifactId>
          <version>1</version>
          <dependencies>
            <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>%s</version></dependency>
            <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>2.0.16</version></dependency>
          </dependencies>
        </project>
        """.formatted(KAFKA_VERSION));
    Path out = pomDir.resolve("cp.txt");
    List<String> mvn = new ArrayList<>(List.of("mvn", "-q", "-B", "dependency:build-classpath",
        "-Dmdep.outputFile=" + out));
    if (Boolean.getBoolean("kafka.broker.offline")) {
      mvn.add("-o");
    }
    Process p = new ProcessBuilder(mvn).directory(pomDir.toFile()).redirectErrorStream(true)
        .redirectOutput(pomDir.resolve("mvn.log").toFile()).start();
    if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
      throw new IllegalStateException("cannot resolve the Kafka broker's classpath: "
          + Files.readString(pomDir.resolve("mvn.log")));
    }
    String cp = Files.readString(out).trim();
    Files.writeString(cache, cp);
    return cp;
  }

  @Override
  public void close() throws InterruptedException {
    stop();
  }
}

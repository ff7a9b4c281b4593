package dev.ipseccni.agent;

import dev.ipseccni.agent.cli.EventsCommand;
import dev.ipseccni.agent.cli.NodesCommand;
import dev.ipseccni.agent.cli.PodsCommand;
import dev.ipseccni.agent.cli.StatusCommand;
import dev.ipseccni.agent.cli.TunnelsCommand;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import sun.misc.Signal;

/** {@code ipsec-cni}: the node agent and the operator's commands. */
@Command(name = "ipsec-cni", mixinStandardHelpOptions = true, version = NodeAgent.VERSION,
    description = "IPsec-encrypted pod networking for Kubernetes.",
    subcommands = {Main.Agent.class, Main.CheckConfig.class, UninstallCommand.class, StatusCommand.class, NodesCommand.class,
        PodsCommand.class, TunnelsCommand.class, EventsCommand.class, PkiCommand.class})
public final class Main implements Runnable {

  static final int EXIT_CONFIG = 2;
  static final int EXIT_START_FAILED = 1;

  public static void main(String[] args) {
    System.exit(new CommandLine(new Main()).execute(args));
  }

  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  @Command(name = "agent", description = "Run the node agent until SIGTERM.")
  static final class Agent implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--config", required = true, description = "the agent's JSON configuration file")
    Path configFile;

    @Override
    public Integer call() throws Exception {
      AgentConfig config;
      try {
        config = AgentConfig.load(configFile);
      } catch (ConfigException e) {
        e.problems().forEach(p -> System.err.println("config error: " + p));
        return EXIT_CONFIG;
      }
      LogSetup.configure(config.nodeName(), config.log().format(), config.log().level());
      Logger log = Logger.getLogger(Main.class.getName());

      CompletableFuture<NodeAgent> started = NodeAgent.start(config).toCompletionStage().toCompletableFuture();
      NodeAgent agent;
      try {
        agent = started.join();
      } catch (java.util.concurrent.CompletionException e) {
        if (e.getCause() instanceof ConfigException ce) {
          ce.problems().forEach(p -> log.severe("config error: " + p));
          return EXIT_CONFIG;
        }
        log.log(Level.SEVERE, "agent failed to start: " + e.getCause().getMessage(), e.getCause());
        return EXIT_START_FAILED;
      }
      log.info(() -> "agent " + config.nodeName() + " running");

      CompletableFuture<String> stopSignal = new CompletableFuture<>();
      Signal.handle(new Signal("TERM"), s -> stopSignal.complete("SIGTERM"));
      Signal.handle(new Signal("INT"), s -> stopSignal.complete("SIGINT"));
      String signal = stopSignal.join();
      log.info(() -> signal + ": leaving the cluster");
      try {
        agent.stop().toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
      } catch (Exception e) {
        log.log(Level.WARNING, "clean shutdown did not complete: " + e, e);
        return EXIT_START_FAILED;
      }
      log.info("stopped");
      return 0;
    }
  }

  @Command(name = "check-config", description = "Validate a configuration file and exit.")
  static final class CheckConfig implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--config", required = true, description = "the agent's JSON configuration file")
    Path configFile;

    @Override
    public Integer call() {
      try {
        AgentConfig config = AgentConfig.load(configFile);
        var problems = config.checkEnvironment();
        if (!problems.isEmpty()) {
          problems.forEach(p -> System.err.println("config error: " + p));
          return EXIT_CONFIG;
        }
        System.out.println("config ok: node " + config.nodeName() + ", services " + config.services());
        return 0;
      } catch (ConfigException e) {
        e.problems().forEach(p -> System.err.println("config error: " + p));
        return EXIT_CONFIG;
      }
    }
  }
}

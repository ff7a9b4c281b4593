package dev.ipseccni.agent;

import dev.ipseccni.cni.Conflist;
import dev.ipseccni.firewall.NodeFirewall;
import dev.ipseccni.tunnel.TunnelUninstall;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Removes from the node what the agent put there: the conflist (so the runtime stops
 * using this network), the firewall chains and their jumps, and the tunnels and keys it
 * loaded into charon with their rendered file. Run it after stopping the agent; pods
 * still attached keep their interfaces until they are deleted.
 */
@Command(name = "uninstall", description = "Remove this node's conflist, firewall chains and tunnels (agent stopped first).")
final class UninstallCommand implements Callable<Integer> {
  @Option(names = "--config", required = true, description = "the agent's JSON configuration file")
  Path configFile;

  @Override
  public Integer call() {
    AgentConfig config;
    try {
      config = AgentConfig.load(configFile);
    } catch (ConfigException e) {
      e.problems().forEach(p -> System.err.println("config error: " + p));
      return Main.EXIT_CONFIG;
    }
    ServiceVerticles services = new ServiceVerticles(config);
    int failures = 0;
    try {
      Path conflist = config.cniConfDir().resolve(Conflist.FILE_NAME);
      System.out.println(Files.deleteIfExists(conflist) ? "removed " + conflist : "no conflist at " + conflist);
    } catch (Exception e) {
      System.err.println("cannot remove the conflist: " + e.getMessage());
      failures++;
    }
    if (config.runs("firewall")) {
      try {
        NodeFirewall.uninstall(services.firewallSettings());
        System.out.println("removed the firewall chains and their jumps");
      } catch (Exception e) {
        System.err.println("cannot remove the firewall chains: " + e.getMessage());
        failures++;
      }
    }
    if (config.runs("tunnel")) {
      try {
        TunnelUninstall.Removed removed = TunnelUninstall.run(config.charon().viciSocket(),
            services.tunnelSettings().renderedConfig());
        System.out.println("unloaded from charon: " + removed.connections() + ", keys " + removed.sharedKeys()
            + (removed.renderedFile() ? ", removed " + services.tunnelSettings().renderedConfig() : ""));
      } catch (Exception e) {
        System.err.println("cannot unload the tunnels: " + e.getMessage());
        failures++;
      }
    }
    return failures == 0 ? 0 : Main.EXIT_START_FAILED;
  }
}

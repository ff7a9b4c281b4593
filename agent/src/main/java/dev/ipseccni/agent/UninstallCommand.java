package dev.ipseccni.agent;

import dev.ipseccni.cni.Conflist;
import dev.ipseccni.firewall.NodeFirewall;
import dev.ipseccni.tunnel.TunnelUninstall;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Removes from the node what the agent put there: the conflist (so the runtime stops
 * using this network), the firewall chains and their jumps, and the tunnels and keys it
 * loaded into charon with their rendered file. Run it with the agent and charon stopped
 * (README): a stopped charon holds nothing of ours, so there is nothing to unload. Says
 * what it removed and what is left; exits 0 only when nothing of ours remains. Pods still
 * attached keep their interfaces until they are deleted.
 */
@Command(name = "uninstall", description = "Remove this node's conflist, firewall chains and tunnels (agent and charon stopped first).")
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
      System.err.println("left: the conflist, cannot remove it: " + e.getMessage());
      failures++;
    }
    if (config.runs("firewall")) {
      try {
        NodeFirewall firewall = new NodeFirewall(services.firewallSettings());
        firewall.uninstall();
        List<String> left = firewall.leftovers();
        if (left.isEmpty()) {
          System.out.println("removed the firewall chains and their jumps");
        } else {
          left.forEach(l -> System.err.println("left: firewall " + l));
          failures++;
        }
      } catch (Exception e) {
        System.err.println("left: the firewall chains, cannot remove them: " + e.getMessage());
        failures++;
      }
    }
    if (config.runs("tunnel")) {
      Path rendered = services.tunnelSettings().renderedConfig();
      try {
        TunnelUninstall.Removed removed = TunnelUninstall.run(config.charon().viciSocket(), rendered);
        System.out.println(removed.renderedFile() ? "removed " + rendered : "no rendered swanctl file at " + rendered);
        if (removed.charonNotRunning().isPresent()) {
          System.out.println("charon is not running (" + removed.charonNotRunning().get() + "): nothing to unload;"
              + " the tunnels and keys loaded into it lived only in its memory and are gone with it");
        } else {
          System.out.println("unloaded from charon: " + removed.connections() + ", keys " + removed.sharedKeys());
        }
      } catch (Exception e) {
        System.err.println("left: tunnels in charon, cannot unload them: " + e.getMessage());
        failures++;
      }
    }
    System.out.println(failures == 0 ? "nothing of ipsec-cni remains on this node" : failures + " part(s) left, see above");
    return failures == 0 ? 0 : Main.EXIT_START_FAILED;
  }
}

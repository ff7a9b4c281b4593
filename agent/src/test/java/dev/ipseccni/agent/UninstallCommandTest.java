package dev.ipseccni.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.cni.Conflist;
import dev.ipseccni.firewall.Ipv4Cidr;
import dev.ipseccni.firewall.NodeFirewall;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ipsec-cni uninstall} as the README says to run it: agent and charon stopped. The node
 * is a real network namespace with real iptables; the command runs inside it as its own JVM.
 */
class UninstallCommandTest {
  private static final String NS = System.getenv().getOrDefault("LAB_PREFIX", "ag-") + "uninstall";
  private static final String FOREIGN = "-A FORWARD -s 192.0.2.0/24 -j ACCEPT";

  @TempDir
  Path dir;
  private Path config;
  private Path conflist;
  private Path rendered;
  private Path vici;

  @BeforeEach
  void node() throws Exception {
    removeNamespace();
    run("ip", "netns", "add", NS);
    vici = dir.resolve("charon.vici");
    config = dir.resolve("agent.json");
    Files.writeString(config, "{\"nodeName\":\"node1\",\"underlayAddress\":\"192.0.2.11\","
        + "\"services\":[\"ipam\",\"firewall\",\"tunnel\",\"cni-gateway\"],"
        + "\"stateDir\":\"" + dir.resolve("state") + "\",\"cniConfDir\":\"" + dir.resolve("net.d") + "\","
        + "\"charon\":{\"viciSocket\":\"" + vici + "\"}}");
    Files.createDirectories(dir.resolve("net.d"));
    Files.createDirectories(dir.resolve("state"));
    conflist = dir.resolve("net.d").resolve(Conflist.FILE_NAME);
    rendered = dir.resolve("state").resolve("swanctl.conf");
  }

  @AfterEach
  void removeNamespace() throws Exception {
    if (Files.exists(Path.of("/run/netns", NS))) {
      run("ip", "netns", "delete", NS);
    }
  }

  /** What a stopped agent leaves behind: its conflist, its chains and jumps, its rendered swanctl file. */
  private NodeFirewall installed() throws Exception {
    AgentConfig c = AgentConfig.load(config);
    NodeFirewall firewall = new NodeFirewall(new ServiceVerticles(c).firewallSettings()
        .withCommandPrefix(List.of("ip", "netns", "exec", NS)));
    firewall.enforce(Optional.of(Ipv4Cidr.parse("10.128.1.0/24").orElseThrow()));
    assertFalse(firewall.leftovers().isEmpty());
    run("ip", "netns", "exec", NS, "iptables", "-A", "FORWARD", "-s", "192.0.2.0/24", "-j", "ACCEPT");
    Files.writeString(conflist, "{}");
    Files.writeString(rendered, "connections {}\n");
    return firewall;
  }

  private String uninstall(int expectedExit) throws Exception {
    Process p = new ProcessBuilder("ip", "netns", "exec", NS,
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), Main.class.getName(), "uninstall", "--config", config.toString())
        .redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), out);
    assertEquals(expectedExit, p.exitValue(), out);
    return out;
  }

  private void assertNothingOfOursRemains(NodeFirewall firewall) throws Exception {
    assertEquals(List.of(), firewall.leftovers());
    String rules = run("ip", "netns", "exec", NS, "iptables-save");
    assertFalse(rules.contains("IPSEC-CNI"), rules);
    assertTrue(rules.contains(FOREIGN), "a rule not ours stays: " + rules);
    assertFalse(Files.exists(conflist));
    assertFalse(Files.exists(rendered));
  }

  @Test
  void withCharonStoppedEverythingOfOursGoesAndTheExitIsZero() throws Exception {
    NodeFirewall firewall = installed();

    String out = uninstall(0);

    assertTrue(out.contains("removed " + conflist), out);
    assertTrue(out.contains("removed the firewall chains and their jumps"), out);
    assertTrue(out.contains("removed " + rendered), out);
    assertTrue(out.contains("charon is not running (no VICI socket at " + vici + "): nothing to unload"), out);
    assertTrue(out.contains("nothing of ipsec-cni remains on this node"), out);
    assertNothingOfOursRemains(firewall);

    String again = uninstall(0);
    assertTrue(again.contains("no conflist at " + conflist) && again.contains("no rendered swanctl file at " + rendered),
        again);
  }

  @Test
  void theSocketOfAKilledCharonCountsAsStopped() throws Exception {
    NodeFirewall firewall = installed();
    try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      server.bind(UnixDomainSocketAddress.of(vici));
    }
    assertTrue(Files.exists(vici), "the socket file stays after its listener is gone");

    String out = uninstall(0);

    assertTrue(out.contains("charon is not running (nobody accepts connections on " + vici + ")"), out);
    assertNothingOfOursRemains(firewall);
  }

  private static String run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException(List.of(command) + " failed: " + out);
    }
    return out;
  }
}

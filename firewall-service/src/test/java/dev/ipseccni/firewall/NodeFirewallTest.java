package dev.ipseccni.firewall;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The chains against real iptables, inside a namespace of their own. */
class NodeFirewallTest {
  private static final Ipv4Cidr BLOCK = Ipv4Cidr.parse("10.128.1.0/24").orElseThrow();

  /** What a Docker host has before we come: a DOCKER-USER chain jumped to from FORWARD, and its NAT. */
  static final String DOCKER_LIKE = """
      *filter
      :DOCKER-USER - [0:0]
      -A DOCKER-USER -j RETURN
      -A FORWARD -j DOCKER-USER
      -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A OUTPUT -d 192.0.2.7/32 -j ACCEPT
      COMMIT
      *nat
      -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
      COMMIT
      """;

  private Netns ns;
  private FirewallSettings settings;

  @BeforeEach
  void namespace() {
    ns = Netns.fresh("fw-rules");
    settings = FirewallSettings.defaults("node1").withCommandPrefix(ns.prefix());
  }

  @AfterEach
  void removeNamespace() {
    ns.close();
  }

  @Test
  void chainsAndJumpsPresentAfterStart() throws Exception {
    Enforcement first = new NodeFirewall(settings).enforce(Optional.of(BLOCK));

    assertTrue(first.repaired().contains("filter/IPSEC-CNI-FWD: chain missing"), first.repaired().toString());
    assertEquals(List.of("filter/IPSEC-CNI-FWD", "filter/IPSEC-CNI-OUT", "nat/IPSEC-CNI-NAT", "filter/IPSEC-CNI-IN",
        "nft/ip ipsec-cni guard-after-nat"), first.chains());
    assertTrue(ns.run("iptables", "-S", "FORWARD").contains("-A FORWARD -m comment --comment ipsec-cni -j IPSEC-CNI-FWD"));
    assertEquals("-A FORWARD -m comment --comment ipsec-cni -j IPSEC-CNI-FWD", firstRule("filter", "FORWARD"));
    assertEquals("-A OUTPUT -m comment --comment ipsec-cni -j IPSEC-CNI-OUT", firstRule("filter", "OUTPUT"));
    assertEquals("-A POSTROUTING -m comment --comment ipsec-cni -j IPSEC-CNI-NAT", firstRule("nat", "POSTROUTING"));
    String forward = ns.run("iptables", "-S", "IPSEC-CNI-FWD");
    assertTrue(forward.contains("-d 10.128.0.0/16 ! -o cni0"), forward);
    assertTrue(forward.contains("-m policy --dir out --pol ipsec"), forward);
    assertTrue(ns.run("iptables", "-t", "nat", "-S", "IPSEC-CNI-NAT").contains("-s 10.128.1.0/24 ! -o cni0"));
  }

  @Test
  void runningTwiceChangesNothing() throws Exception {
    new NodeFirewall(settings).enforce(Optional.of(BLOCK));
    String afterFirst = ns.ruleset();

    Enforcement second = new NodeFirewall(settings).enforce(Optional.of(BLOCK));

    assertEquals(List.of(), second.repaired());
    assertEquals(afterFirst, ns.ruleset());
  }

  @Test
  void libipsecRulesReadBackAsWritten() throws Exception {
    FirewallSettings libipsec = settings.withDatapath(Datapath.LIBIPSEC, "ipsec0");
    new NodeFirewall(libipsec).enforce(Optional.of(BLOCK));

    assertEquals(List.of(), new NodeFirewall(libipsec).enforce(Optional.of(BLOCK)).repaired());
    assertTrue(ns.run("iptables", "-S", "IPSEC-CNI-FWD").contains("-i cni0 -o ipsec0"));
  }

  @Test
  void controlPlaneOverIpsecRulesReadBackAsWritten() throws Exception {
    FirewallSettings overIpsec = settings.withControlPlaneOverIpsec(true);
    new NodeFirewall(overIpsec).enforce(Optional.of(BLOCK));

    assertEquals(List.of(), new NodeFirewall(overIpsec).enforce(Optional.of(BLOCK)).repaired());
    String input = ns.run("iptables", "-S", "IPSEC-CNI-IN");
    for (int port : List.of(5701, 5702)) {
      assertTrue(input.contains("-p tcp -m tcp --dport " + port + " -m policy --dir in --pol ipsec --mode transport"),
          input);
      assertTrue(input.contains("! -i lo -p tcp -m tcp --dport " + port), input);
    }
    assertTrue(ns.run("iptables", "-S", "IPSEC-CNI-OUT").contains("--dport 5701 -m policy --dir out --pol none"));
    assertFalse(ns.run("iptables", "-S", "IPSEC-CNI-IN").contains("--pol none"));

    // without the switch the rules go again
    Enforcement off = new NodeFirewall(settings).enforce(Optional.of(BLOCK));
    assertFalse(off.repaired().isEmpty());
    assertFalse(ns.run("iptables", "-S", "IPSEC-CNI-IN").contains("--pol ipsec"));
  }

  @Test
  void deniedNodesRulesReadBackAsWrittenAndGoWithTheDenial() throws Exception {
    FirewallSettings overIpsec = settings.withControlPlaneOverIpsec(true);
    java.util.Map<String, String> denied = java.util.Map.of("node3", "192.0.2.13");
    new NodeFirewall(overIpsec).enforce(Optional.of(BLOCK), denied);

    assertEquals(List.of(), new NodeFirewall(overIpsec).enforce(Optional.of(BLOCK), denied).repaired());
    List<String> input = List.of(ns.run("iptables", "-S", "IPSEC-CNI-IN").split("\n"));
    for (int port : List.of(5701, 5702)) {
      String drop = "-A IPSEC-CNI-IN -s 192.0.2.13/32 -p tcp -m tcp --dport " + port
          + " -m comment --comment \"ipsec-cni: control plane: node node3 denied\" -j DROP";
      assertTrue(input.indexOf(drop) >= 0 && input.indexOf(drop) < input.stream()
          .filter(r -> r.contains("--pol ipsec")).map(input::indexOf).findFirst().orElseThrow(),
          "the denied node's drop comes before what an SA opens: " + input);
    }
    assertTrue(ns.run("iptables", "-S", "IPSEC-CNI-OUT").contains("-d 192.0.2.13/32 -p tcp -m tcp --dport 5702"));

    new NodeFirewall(overIpsec).enforce(Optional.of(BLOCK));
    assertFalse(ns.run("iptables", "-S", "IPSEC-CNI-IN").contains("192.0.2.13"), "the drop stays after the denial");
    assertFalse(ns.run("iptables", "-S", "IPSEC-CNI-OUT").contains("192.0.2.13"), "the drop stays after the denial");
  }

  @Test
  void controlPlaneOverIpsecIsRefusedWithLibipsec() {
    assertTrue(settings.withDatapath(Datapath.LIBIPSEC, "ipsec0").withControlPlaneOverIpsec(true).errors().stream()
        .anyMatch(e -> e.contains("needs the kernel datapath")));
  }

  @Test
  void guardAloneBeforeTheOwnBlockIsKnown() throws Exception {
    NodeFirewall firewall = new NodeFirewall(settings);
    firewall.enforce(Optional.empty());
    String forward = ns.run("iptables", "-S", "IPSEC-CNI-FWD");
    assertTrue(forward.contains("-j DROP"), forward);
    assertFalse(forward.contains("ACCEPT"), forward);

    Enforcement withBlock = firewall.enforce(Optional.of(BLOCK));

    assertTrue(withBlock.repaired().stream().anyMatch(r -> r.startsWith("filter/IPSEC-CNI-FWD: rule missing")),
        withBlock.repaired().toString());
    assertTrue(ns.run("iptables", "-S", "IPSEC-CNI-FWD").contains("ACCEPT"));
  }

  @Test
  void deletedJumpIsRestored() throws Exception {
    NodeFirewall firewall = new NodeFirewall(settings);
    firewall.enforce(Optional.of(BLOCK));
    String asserted = ns.ruleset();
    ns.run("iptables", "-D", "FORWARD", "-m", "comment", "--comment", "ipsec-cni", "-j", "IPSEC-CNI-FWD");

    Enforcement repair = firewall.enforce(Optional.of(BLOCK));

    assertEquals(List.of("filter/FORWARD: jump to IPSEC-CNI-FWD missing"), repair.repaired());
    assertEquals(asserted, ns.ruleset());
  }

  @Test
  void flushedChainIsRestored() throws Exception {
    NodeFirewall firewall = new NodeFirewall(settings);
    firewall.enforce(Optional.of(BLOCK));
    String asserted = ns.ruleset();
    ns.run("iptables", "-F", "IPSEC-CNI-FWD");
    ns.run("iptables", "-t", "nat", "-D", "IPSEC-CNI-NAT", "1");

    Enforcement repair = firewall.enforce(Optional.of(BLOCK));

    // the kernel datapath's 8 forwarding rules (the guard after NAT is in place, so Service
    // traffic to remote pods is accepted) and the 2 for the agents' ports, and one NAT rule
    assertEquals(10 + 1, repair.repaired().size(), repair.repaired().toString());
    assertTrue(repair.repaired().stream().allMatch(r -> r.contains(": rule missing: ")), repair.repaired().toString());
    assertEquals(asserted, ns.ruleset());
  }

  @Test
  void aRuleAddedInsideOurChainIsRemoved() throws Exception {
    NodeFirewall firewall = new NodeFirewall(settings);
    firewall.enforce(Optional.of(BLOCK));
    String asserted = ns.ruleset();
    ns.run("iptables", "-I", "IPSEC-CNI-FWD", "1", "-s", "10.128.9.0/24", "-j", "ACCEPT");

    Enforcement repair = firewall.enforce(Optional.of(BLOCK));

    assertEquals(List.of("filter/IPSEC-CNI-FWD: rule not ours: -s 10.128.9.0/24 -j ACCEPT"), repair.repaired());
    assertEquals(asserted, ns.ruleset());
  }

  @Test
  void forwardPolicyDropIsLeftToItsOwner() throws Exception {
    NodeFirewall firewall = new NodeFirewall(settings);
    firewall.enforce(Optional.of(BLOCK));
    ns.run("iptables", "-P", "FORWARD", "DROP");

    Enforcement check = firewall.enforce(Optional.of(BLOCK));

    assertEquals(List.of(), check.repaired());
    assertTrue(ns.run("iptables", "-S", "FORWARD").contains("-P FORWARD DROP"));
  }

  @Test
  void foreignRulesArePreservedUntouched() throws Exception {
    ns.restore(DOCKER_LIKE);
    String foreign = ns.run("iptables-save", "-t", "filter").replaceAll("#.*\n", "");

    new NodeFirewall(settings).enforce(Optional.of(BLOCK));

    String filter = ns.run("iptables-save", "-t", "filter").replaceAll("#.*\n", "");
    for (String line : foreign.split("\n")) {
      assertTrue(filter.contains(line), "lost: " + line);
    }
    String forward = ns.run("iptables", "-S", "FORWARD");
    assertTrue(forward.indexOf("-j IPSEC-CNI-FWD") < forward.indexOf("-j DOCKER-USER"), forward);
    assertTrue(forward.contains("-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"), forward);
    assertTrue(ns.run("iptables", "-t", "nat", "-S").contains("-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"));
  }

  @Test
  void uninstallLeavesTheRulesetAsBeforeInstall() throws Exception {
    ns.restore(DOCKER_LIKE);
    String before = ns.ruleset();
    NodeFirewall firewall = new NodeFirewall(settings);
    firewall.enforce(Optional.of(BLOCK));
    assertFalse(before.equals(ns.ruleset()));

    NodeFirewall.uninstall(settings);

    assertEquals(before, ns.ruleset());
  }

  @Test
  void uninstallRemovesJumpsSomeoneElseAddedToOurChains() throws Exception {
    ns.restore(DOCKER_LIKE);
    String before = ns.ruleset();
    new NodeFirewall(settings).enforce(Optional.of(BLOCK));
    ns.run("iptables", "-A", "DOCKER-USER", "-j", "IPSEC-CNI-OUT");
    ns.run("iptables", "-A", "FORWARD", "-j", "IPSEC-CNI-FWD");

    NodeFirewall.uninstall(settings);

    assertEquals(before, ns.ruleset());
  }

  @Test
  void aForeignRuleAboveOurJumpIsMovedBelowOnceThenReported() throws Exception {
    NodeFirewall firewall = new NodeFirewall(settings);
    firewall.enforce(Optional.of(BLOCK));
    ns.restore(DOCKER_LIKE);
    ns.run("iptables", "-I", "FORWARD", "1", "-j", "DOCKER-USER");
    ns.run("iptables", "-D", "FORWARD", "3");  // the appended DOCKER_LIKE jump: keep only the one on top

    Enforcement first = firewall.enforce(Optional.of(BLOCK));
    assertEquals(List.of("filter/FORWARD: 1 foreign rule(s) above the jump to IPSEC-CNI-FWD: -j DOCKER-USER"),
        first.repaired());
    assertTrue(firstRule("filter", "FORWARD").endsWith("-j IPSEC-CNI-FWD"));

    ns.run("iptables", "-D", "FORWARD", "-j", "DOCKER-USER");
    ns.run("iptables", "-I", "FORWARD", "1", "-j", "DOCKER-USER");
    Enforcement second = firewall.enforce(Optional.of(BLOCK));

    assertEquals(List.of(), second.repaired());
    assertEquals(1, second.notRepaired().size());
    assertTrue(second.notRepaired().get(0).contains("-j DOCKER-USER"), second.notRepaired().toString());
    assertEquals("-A FORWARD -j DOCKER-USER", firstRule("filter", "FORWARD"));
  }

  @Test
  void missingIptablesFailsWithTheCommandsError() {
    FirewallSettings missing = settings.withCommands("/nonexistent/iptables-restore", "/nonexistent/iptables-save",
        List.of());
    IptablesException e = assertThrows(IptablesException.class,
        () -> new NodeFirewall(missing).enforce(Optional.of(BLOCK)));
    assertTrue(e.getMessage().contains("/nonexistent/iptables-save"), e.getMessage());
  }

  @Test
  void failingIptablesFailsWithItsErrorOutput() {
    FirewallSettings elsewhere = settings.withCommandPrefix(List.of("ip", "netns", "exec", "fw-absent"));
    IptablesException e = assertThrows(IptablesException.class,
        () -> new NodeFirewall(elsewhere).enforce(Optional.of(BLOCK)));
    assertTrue(e.getMessage().contains("fw-absent") && e.getMessage().contains("failed with status"), e.getMessage());
  }

  @Test
  void restoreErrorsCarryIptablesMessage() {
    // An interface name iptables refuses (too long for the kernel) passes no validation of ours.
    FirewallSettings bad = new FirewallSettings("node1", "cni0", "", "10.128.0.0/16", Datapath.LIBIPSEC,
        "ipsec0", java.time.Duration.ofSeconds(5), ns.prefix(), "iptables-restore", "iptables-save", List.of(), List.of());
    Iptables iptables = Iptables.of(bad);
    IptablesException e = assertThrows(IptablesException.class,
        () -> iptables.restore("*filter\n-A NO-SUCH-CHAIN -j ACCEPT\nCOMMIT\n"));
    assertTrue(e.getMessage().contains("iptables-restore") && e.getMessage().contains("line"), e.getMessage());
  }

  @Test
  void theGuardAfterNatIsAnNftTableReadBackAsWrittenAndRepairedWhole() throws Exception {
    NodeFirewall firewall = new NodeFirewall(settings);
    firewall.enforce(Optional.of(BLOCK));
    String table = ns.run("nft", "list", "table", "ip", "ipsec-cni");
    assertTrue(table.contains("hook postrouting priority 200") && table.contains("rt ipsec exists accept")
        && table.contains("ip daddr 10.128.0.0/16 drop"), table);
    assertEquals(List.of(), new NodeFirewall(settings).enforce(Optional.of(BLOCK)).repaired(),
        "a new agent finds the table as it would write it");

    ns.run("nft", "delete", "rule", "ip", "ipsec-cni", "guard-after-nat", "handle", handleOf("rt ipsec exists"));
    assertEquals(List.of("nft/ip ipsec-cni guard-after-nat: table differs"), firewall.enforce(Optional.of(BLOCK)).repaired());
    assertEquals(table, ns.run("nft", "list", "table", "ip", "ipsec-cni"));

    ns.run("nft", "delete", "table", "ip", "ipsec-cni");
    assertEquals(List.of("nft/ip ipsec-cni guard-after-nat: table missing"), firewall.enforce(Optional.of(BLOCK)).repaired());
    assertEquals(table, ns.run("nft", "list", "table", "ip", "ipsec-cni"));
  }

  @Test
  void withoutNftablesTheGuardAfterNatIsTwoXfrmPoliciesBelowCharons(@TempDir Path bin) throws Exception {
    FirewallSettings noNft = settings.withCommandPrefix(ns.prefixFailing(bin, "nft"));
    NodeFirewall firewall = new NodeFirewall(noNft);
    Enforcement first = firewall.enforce(Optional.of(BLOCK));
    assertTrue(first.chains().contains("xfrm/out policies 1000000,1000001"), first.chains().toString());
    assertTrue(ns.run("iptables", "-S", "IPSEC-CNI-FWD").contains("service traffic to a remote pod, guarded after NAT"));
    String policies = ns.run("ip", "xfrm", "policy", "list");
    assertTrue(policies.contains("src 10.128.1.0/24 dst 10.128.1.0/24 \n\tdir out priority 1000000 "), policies);
    assertTrue(policies.contains("src 10.128.1.0/24 dst 10.128.0.0/16 \n\tdir out action block priority 1000001"), policies);
    assertEquals(List.of(), firewall.enforce(Optional.of(BLOCK)).repaired());

    ns.run("ip", "xfrm", "policy", "delete", "src", "10.128.1.0/24", "dst", "10.128.0.0/16", "dir", "out");
    assertEquals(List.of("xfrm/out: policy missing: src 10.128.1.0/24 dst 10.128.0.0/16 dir out priority 1000001"
        + " action block"), firewall.enforce(Optional.of(BLOCK)).repaired());
    assertEquals(policies, ns.run("ip", "xfrm", "policy", "list"));

    // a charon policy (a pair's, at its own priority) is none of ours
    ns.run("ip", "xfrm", "policy", "add", "src", "10.128.1.0/24", "dst", "10.128.2.0/24", "dir", "out", "priority", "375423");
    Ipv4Cidr moved = Ipv4Cidr.parse("10.128.7.0/24").orElseThrow();
    Enforcement newBlock = firewall.enforce(Optional.of(moved));
    assertEquals(4, newBlock.repaired().stream().filter(r -> r.startsWith("xfrm/out: ")).count(), newBlock.repaired().toString());
    String after = ns.run("ip", "xfrm", "policy", "list");
    assertFalse(after.contains("10.128.1.0/24 dst 10.128.1.0/24") || after.contains("10.128.1.0/24 dst 10.128.0.0/16"), after);
    assertTrue(after.contains("src 10.128.1.0/24 dst 10.128.2.0/24") && after.contains("src 10.128.7.0/24 dst 10.128.0.0/16"),
        after);

    firewall.uninstall();
    assertEquals(List.of(), firewall.leftovers());
    assertTrue(ns.run("ip", "xfrm", "policy", "list").contains("src 10.128.1.0/24 dst 10.128.2.0/24"),
        "uninstall leaves charon's policy to charon");
  }

  @Test
  void withNeitherGuardAfterNatServiceTrafficToRemotePodsIsNotAccepted(@TempDir Path bin) throws Exception {
    FirewallSettings neither = settings.withCommandPrefix(ns.prefixFailing(bin, "nft", "ip"));
    Enforcement enforced = new NodeFirewall(neither).enforce(Optional.of(BLOCK));

    assertEquals(List.of("filter/IPSEC-CNI-FWD", "filter/IPSEC-CNI-OUT", "nat/IPSEC-CNI-NAT", "filter/IPSEC-CNI-IN"),
        enforced.chains());
    assertFalse(ns.run("iptables", "-S", "IPSEC-CNI-FWD").contains("--ctstate DNAT"));
    assertFalse(ns.run("iptables", "-S", "IPSEC-CNI-OUT").contains("--ctstate DNAT"));
  }

  private String handleOf(String ruleText) {
    for (String line : ns.run("nft", "-a", "list", "table", "ip", "ipsec-cni").split("\n")) {
      if (line.contains(ruleText)) {
        return line.substring(line.lastIndexOf("# handle ") + "# handle ".length()).strip();
      }
    }
    throw new AssertionError("no rule with " + ruleText);
  }

  private String firstRule(String table, String chain) {
    return ns.run("iptables", "-t", table, "-S", chain).lines().skip(1).findFirst().orElse("");
  }
}

package dev.ipseccni.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AgentConfigTest {
  @TempDir
  Path dir;

  private static AgentConfig parse(String json) throws Exception {
    return AgentConfig.parse(new ObjectMapper().readTree(json));
  }

  private static List<String> problems(String json) throws Exception {
    return assertThrows(ConfigException.class, () -> parse(json)).problems();
  }

  @Test
  void minimalConfigGetsTheDocumentedDefaults() throws Exception {
    AgentConfig c = parse("{\"nodeName\":\"node1\",\"underlayAddress\":\"192.0.2.11\"}");
    assertEquals("10.128.0.0/16", c.network().clusterCidr());
    assertEquals(24, c.network().blockPrefixLength());
    assertEquals("cni0", c.network().bridge());
    assertEquals(AgentConfig.ALL_SERVICES, c.services());
    assertEquals(List.of("192.0.2.11"), c.cluster().members());
    assertEquals(1, c.cluster().expectedMembers());
    assertEquals(Path.of("/run/ipsec-cni/cni.sock"), c.cniSocket());
    assertEquals("192.0.2.11", c.api().address());
    assertEquals(9750, c.api().port());
  }

  @Test
  void conflistVersionIsOneThatGivesOrWithholdsGcAndStatus() throws Exception {
    assertEquals("1.0.0", parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\"}").network().cniVersion());
    assertEquals("1.1.0", parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\","
        + "\"network\":{\"cniVersion\":\"1.1.0\"}}").network().cniVersion());
    List<String> p = problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\","
        + "\"network\":{\"cniVersion\":\"0.4.0\"}}");
    assertEquals(1, p.size(), p.toString());
    assertTrue(p.get(0).startsWith("network.cniVersion: '0.4.0' must be one of [1.0.0, 1.1.0]"), p.get(0));
  }

  @Test
  void secretGraceDefaultsToAnHourAndMustNotBeNegative() throws Exception {
    assertEquals(java.time.Duration.ofHours(1),
        parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\"}").timings().secretGrace());
    assertEquals(List.of("charon.secretGraceSeconds: -1 must not be negative"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"charon\":{\"secretGraceSeconds\":-1}}"));
  }

  @Test
  void proposalsDefaultToAesGcmWithX25519AndAreCheckedKeywordByKeyword() throws Exception {
    AgentConfig.Charon charon = parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\"}").charon();
    assertEquals("aes256gcm16-prfsha256-x25519", charon.ikeProposals());
    assertEquals("aes256gcm16-x25519", charon.espProposals());
    assertEquals("aes256gcm16-prfsha384-ecp384", parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\","
        + "\"charon\":{\"ikeProposals\":\"aes256gcm16-prfsha384-ecp384\"}}").charon().ikeProposals());
    List<String> p = problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\","
        + "\"charon\":{\"ikeProposals\":\"aes256gcm16-prfsha384-ecp385\",\"espProposals\":\"aes256gcm16-prfsha256\"}}");
    assertEquals(2, p.size(), p.toString());
    assertTrue(p.get(0).startsWith("charon.ikeProposals: 'aes256gcm16-prfsha384-ecp385': 'ecp385' is not a proposal keyword"),
        p.get(0));
    assertTrue(p.get(1).startsWith("charon.espProposals: 'aes256gcm16-prfsha256': 'prfsha256' is a PRF"), p.get(1));
  }

  @Test
  void badCidrIsNamed() throws Exception {
    assertEquals(List.of("network.clusterCidr: '10.128.0.1/16' is not a network in CIDR notation (e.g. 10.128.0.0/16)"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"network\":{\"clusterCidr\":\"10.128.0.1/16\"}}"));
  }

  @Test
  void blockLargerThanClusterCidrIsRefused() throws Exception {
    List<String> p = problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\","
        + "\"network\":{\"clusterCidr\":\"10.128.0.0/16\",\"blockPrefixLength\":12}}");
    assertEquals(1, p.size(), p.toString());
    assertTrue(p.get(0).startsWith("network.blockPrefixLength: /12 is not smaller than the cluster CIDR"), p.get(0));
  }

  @Test
  void preferredBlockMustBeABlockOfTheClusterCidr() throws Exception {
    assertEquals(List.of("network.preferredBlock: 10.129.1.0/24 is not a /24 block of 10.128.0.0/16"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\","
            + "\"network\":{\"preferredBlock\":\"10.129.1.0/24\"}}"));
  }

  @Test
  void everyBadValueIsReportedNotJustTheFirst() throws Exception {
    List<String> p = problems("{\"nodeName\":\"Node_1\",\"underlayAddress\":\"not-an-ip\",\"services\":[\"ipam\",\"dns\"],"
        + "\"cluster\":{\"port\":70000},\"charon\":{\"datapath\":\"xfrm\"},\"log\":{\"format\":\"xml\"},\"extra\":1}");
    assertEquals(7, p.size(), p.toString());
    assertTrue(p.stream().anyMatch(m -> m.startsWith("extra: unknown key (known: nodeName, underlayAddress, cluster,")),
        p.toString());
    assertTrue(p.contains("underlayAddress: 'not-an-ip' is not an IP address"), p.toString());
    assertTrue(p.contains("cluster.port: 70000 is not a port number (1..65535)"), p.toString());
    assertTrue(p.contains("services: unknown service 'dns' (known: ipam, tunnel, firewall, cni-gateway)"), p.toString());
    assertTrue(p.contains("charon.datapath: 'xfrm' must be one of 'kernel', 'libipsec'"), p.toString());
    assertTrue(p.contains("log.format: 'xml' must be one of 'text', 'json'"), p.toString());
  }

  @Test
  void hostNamesAreNotAcceptedAsAddresses() throws Exception {
    assertEquals(List.of("cluster.members: 'node2.example' is not an IP address"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"cluster\":{\"members\":[\"node2.example:5701\"]}}"));
  }

  @Test
  void wrongTypesAreNamedWithWhatIsAllowed() throws Exception {
    List<String> p = problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"network\":{\"mtu\":\"1400\"},"
        + "\"cluster\":{\"port\":\"5701\",\"liteMember\":\"yes\"},\"charon\":{\"datapath\":5},"
        + "\"ipam\":{\"mirrorDelayMillis\":1.5},\"log\":{\"level\":[\"INFO\"]}}");
    assertEquals(List.of(
        "cluster.port: expected a port number (1..65535), got \"5701\"",
        "cluster.liteMember: expected true or false, got \"yes\"",
        "network.mtu: expected an integer (576..9000), got \"1400\"",
        "charon.datapath: expected one of 'kernel', 'libipsec', got 5",
        "log.level: expected one of 'DEBUG', 'INFO', 'WARN', 'ERROR', got [\"INFO\"]",
        "ipam.mirrorDelayMillis: expected an integer (1..60000), got 1.5"), p);
  }

  @Test
  void outOfRangeValuesNameTheRange() throws Exception {
    List<String> p = problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"network\":{\"mtu\":100,"
        + "\"blockPrefixLength\":40},\"cluster\":{\"expectedMembers\":0},\"api\":{\"port\":-1},"
        + "\"journal\":{\"kafka\":{\"bufferEvents\":0}},\"firewall\":{\"checkSeconds\":0}}");
    assertEquals(List.of(
        "cluster.expectedMembers: 0 must be at least 1",
        "network.blockPrefixLength: 40 is outside 1..32",
        "network.mtu: 100 is outside 576..9000",
        "api.port: -1 is not a port number (0..65535, 0 = off)",
        "journal.kafka.bufferEvents: 0 is outside 1..10000000",
        "firewall.checkSeconds: 0 is outside 1..86400"), p);
  }

  @Test
  void unknownNestedKeyIsNamedByItsFullPathWithTheKnownOnes() throws Exception {
    assertEquals(List.of("network.mtuu: unknown key (known: name, clusterCidr, blockPrefixLength, preferredBlock, "
            + "bridge, mtu, cniVersion)"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"network\":{\"mtuu\":1300}}"));
    assertEquals(List.of("journal.kafka.bootstap: unknown key (known: bootstrap, topic, bufferEvents)",
            "journal.topic: unknown key (known: kafka)"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"journal\":{\"kafka\":"
            + "{\"bootstap\":\"192.0.2.100:9092\"},\"topic\":\"t\"}}"));
    assertEquals(List.of("ipam.leaseGrace: unknown key (known: leaseRenewSeconds, leaseGraceSeconds, mirrorDelayMillis)",
            "charon.reconcile: unknown key (known: viciSocket, datapath, ikeProposals, espProposals, auth, "
                + "certificate, privateKey, caCertificate, deniedNodesFile, reconcileSeconds, secretGraceSeconds)"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"ipam\":{\"leaseGrace\":60},"
            + "\"charon\":{\"reconcile\":1}}"));
  }

  @Test
  void unknownKeyInsideClusterTlsIsNamed() throws Exception {
    for (String f : List.of("node.crt", "node.key", "ca.crt")) {
      Files.writeString(dir.resolve(f), "PEM");
    }
    assertEquals(List.of("cluster.tls.caFiles: unknown key (known: certFile, keyFile, caFile)"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"cluster\":{\"tls\":{"
            + "\"certFile\":\"" + dir.resolve("node.crt") + "\",\"keyFile\":\"" + dir.resolve("node.key")
            + "\",\"caFile\":\"" + dir.resolve("ca.crt") + "\",\"caFiles\":\"x\"}}}"));
  }

  @Test
  void sectionThatIsNotAnObjectIsNamed() throws Exception {
    assertEquals(List.of("network: expected an object, got 1300"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"network\":1300}"));
    assertEquals(List.of("cluster.tls: expected an object {certFile, keyFile, caFile}, got \"on\""),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"cluster\":{\"tls\":\"on\"}}"));
  }

  @Test
  void malformedFileIsOneClearError() throws Exception {
    Path file = dir.resolve("agent.json");
    Files.writeString(file, "{\"nodeName\": \"n\",\n  \"underlayAddress\": }");
    List<String> p = assertThrows(ConfigException.class, () -> AgentConfig.load(file)).problems();
    assertEquals(1, p.size());
    assertTrue(p.get(0).startsWith(file + ": not valid JSON"), p.get(0));
    assertTrue(p.get(0).endsWith("at line 2"), p.get(0));
  }

  private AgentConfig tunnelConfig(Path secret, Path vici) throws Exception {
    return parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"services\":[\"tunnel\"],"
        + "\"secretFile\":\"" + secret + "\",\"charon\":{\"auth\":\"psk\",\"viciSocket\":\"" + vici + "\"}}");
  }

  @Test
  void certificatesAreTheDefaultAuthAndTheirFilesAreCheckedWhenTheTunnelRuns() throws Exception {
    AgentConfig c = parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"services\":[\"tunnel\"],"
        + "\"charon\":{\"viciSocket\":\"/nonexistent\",\"certificate\":\"" + dir.resolve("n.crt") + "\"}}");
    var files = (dev.ipseccni.tunnel.identity.IkeAuth.Certificates) c.charon().auth();
    assertEquals(dir.resolve("n.crt"), files.certificate());
    assertEquals(Path.of("/etc/ipsec-cni/pki/node.key"), files.privateKey());
    assertEquals(Path.of("/etc/ipsec-cni/pki/ca.crt"), files.caCertificate());
    assertEquals(java.util.Optional.empty(), files.deniedNodes());
    List<String> p = c.checkEnvironment();
    assertEquals("charon.certificate: " + dir.resolve("n.crt") + " does not exist", p.get(0), p.toString());
    assertEquals(2, p.size(), "the certificate and the socket, not the secret file: " + p);
  }

  @Test
  void theControlPlaneRidesIpsecWhereverItCanAndIsRefusedElsewhere() throws Exception {
    String node = "\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\"";
    AgentConfig defaults = parse("{" + node + ",\"cluster\":{\"members\":[\"192.0.2.11\",\"192.0.2.12:5801\"]}}");
    assertTrue(defaults.cluster().overIpsec(), "the default with kernel datapath, certificates, tunnel service");
    assertEquals(List.of("192.0.2.11", "192.0.2.12"), defaults.cluster().memberAddresses());
    assertFalse(parse("{" + node + ",\"cluster\":{\"overIpsec\":false}}").cluster().overIpsec(), "switched off");
    for (String cannot : List.of("\"charon\":{\"datapath\":\"libipsec\"}", "\"charon\":{\"auth\":\"psk\"}",
        "\"services\":[\"ipam\"]")) {
      assertFalse(parse("{" + node + "," + cannot + "}").cluster().overIpsec(), "off by default with " + cannot);
      List<String> p = problems("{" + node + ",\"cluster\":{\"overIpsec\":true}," + cannot + "}");
      assertEquals(1, p.size(), p.toString());
      assertTrue(p.get(0).startsWith("cluster.overIpsec: true needs charon.datapath 'kernel', charon.auth 'certificate'"),
          p.get(0));
    }
  }

  @Test
  void unknownAuthIsRefused() {
    List<String> p = assertThrows(ConfigException.class, () -> parse("{\"nodeName\":\"n\","
        + "\"underlayAddress\":\"192.0.2.11\",\"charon\":{\"auth\":\"x509\",\"privateKey\":\"key.pem\"}}")).problems();
    assertEquals(List.of("charon.auth: 'x509' must be 'certificate' or 'psk'",
        "charon.privateKey: 'key.pem' must be an absolute path"), p);
  }

  @Test
  void missingSecretAndAbsentCharonAreReportedWhenTheTunnelRuns() throws Exception {
    List<String> p = tunnelConfig(dir.resolve("secret"), dir.resolve("charon.vici")).checkEnvironment();
    assertEquals(2, p.size(), p.toString());
    assertTrue(p.get(0).startsWith("secretFile: cluster secret file " + dir.resolve("secret") + " does not exist"), p.get(0));
    assertEquals("charon.viciSocket: " + dir.resolve("charon.vici") + " does not exist (is charon running?)", p.get(1));
  }

  @Test
  void shortOrOpenSecretIsRefused() throws Exception {
    Path secret = dir.resolve("secret");
    Files.write(secret, new byte[16]);
    Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-------"));
    assertEquals(List.of("secretFile: cluster secret file " + secret + " holds a secret of 16 bytes; at least 32 are"
        + " needed (e.g. head -c 48 /dev/urandom | base64 > " + secret + ")"), SecretFileCheck.problems(secret));
    Files.write(secret, new byte[64]);
    Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-r--r--"));
    assertEquals(List.of("secretFile: cluster secret file " + secret + " has mode rw-r--r--: group and others must"
        + " have no access to it (chmod 0600)"), SecretFileCheck.problems(secret));
    Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-------"));
    assertEquals(List.of(), SecretFileCheck.problems(secret));
  }

  /** The files on which check-config and the tunnel service used to disagree, and a few more. */
  @Test
  void checkConfigAcceptsExactlyTheSecretFilesTheTunnelServiceLoads() throws Exception {
    String[][] cases = {
        {"x".repeat(31) + "\n", "rw-------"}, // 32 bytes on disk, 31 of secret
        {"x".repeat(32) + "\n", "rw-------"},
        {"x".repeat(32), "rwx------"},
        {"x".repeat(32), "r--------"},
        {"x".repeat(32), "rw-r-----"},
        {"x".repeat(32), "rw-----w-"},
        {"x".repeat(30) + " \t\r\n", "rw-------"},
    };
    for (String[] c : cases) {
      Path secret = dir.resolve("secret-" + c[1] + "-" + c[0].length());
      Files.writeString(secret, c[0]);
      Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString(c[1]));
      String loaded;
      try {
        dev.ipseccni.tunnel.ClusterSecret.load(secret);
        loaded = null;
      } catch (IOException e) {
        loaded = "secretFile: " + e.getMessage();
      }
      assertEquals(loaded == null ? List.of() : List.of(loaded), SecretFileCheck.problems(secret),
          c[1] + " " + c[0].length() + " bytes");
    }
  }

  @Test
  void socketFileNobodyListensOnIsUnreachable() throws Exception {
    Path secret = dir.resolve("secret");
    Files.write(secret, new byte[32]);
    Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-------"));
    Path vici = dir.resolve("charon.vici");
    try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      server.bind(UnixDomainSocketAddress.of(vici));
      assertEquals(List.of(), tunnelConfig(secret, vici).checkEnvironment());
    }
    // closed listener: the file stays, nobody accepts
    assertTrue(Files.exists(vici));
    assertEquals(List.of("charon.viciSocket: " + vici + " refuses connections (is charon running?)"),
        tunnelConfig(secret, vici).checkEnvironment());
  }

  @Test
  void servicesThatAreNotRunNeedNoCharon() throws IOException, Exception {
    AgentConfig c = parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"services\":[\"ipam\"],"
        + "\"secretFile\":\"/nonexistent\",\"charon\":{\"viciSocket\":\"/nonexistent\"}}");
    assertEquals(List.of(), c.checkEnvironment());
  }

  @Test
  void graceShorterThanThreeRenewalsIsRefused() throws Exception {
    assertEquals(List.of("ipam.leaseGraceSeconds: 60 must be at least three renewals (90), or a live node could lose its block"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"ipam\":{\"leaseRenewSeconds\":30,\"leaseGraceSeconds\":60}}"));
  }

  @Test
  void mirrorDelayDefaultsToHalfASecondAndIsBounded() throws Exception {
    assertEquals(java.time.Duration.ofMillis(500), new ServiceVerticles(
        parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\"}")).ipamSettings().mirrorDelay());
    for (int bad : new int[] {0, 60_001}) {
      List<String> p = problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"ipam\":{\"mirrorDelayMillis\":"
          + bad + "}}");
      assertEquals(1, p.size(), p.toString());
      assertTrue(p.get(0).startsWith("ipam.mirrorDelayMillis: " + bad + " is outside 1..60000"), p.get(0));
    }
  }

  @Test
  void timingsReachTheServices() throws Exception {
    AgentConfig c = parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"ipam\":{\"leaseRenewSeconds\":2,"
        + "\"leaseGraceSeconds\":6,\"mirrorDelayMillis\":7},\"charon\":{\"reconcileSeconds\":3},"
        + "\"firewall\":{\"checkSeconds\":4},\"network\":{\"mtu\":1400}}");
    ServiceVerticles services = new ServiceVerticles(c);
    assertEquals(java.time.Duration.ofSeconds(6), services.ipamSettings().gracePeriod());
    assertEquals(java.time.Duration.ofSeconds(2), services.ipamSettings().renewInterval());
    assertEquals(java.time.Duration.ofMillis(7), services.ipamSettings().mirrorDelay());
    assertEquals(java.time.Duration.ofSeconds(3), services.tunnelSettings().reconcileInterval());
    assertEquals(java.time.Duration.ofSeconds(4), services.firewallSettings().checkInterval());
    assertEquals("ipsec-cni", services.gatewaySettings().networkName());
    assertEquals(List.of("ipam", "tunnel", "firewall", "bridge"), services.gatewaySettings().readinessComponents());
  }

  @Test
  void podMtuComesFromTheLinkHoldingTheUnderlayAddress() throws Exception {
    ServiceVerticles services = new ServiceVerticles(parse("{\"nodeName\":\"n\",\"underlayAddress\":\"127.0.0.1\"}"));
    int lo = java.net.NetworkInterface.getByName("lo").getMTU();
    assertEquals(dev.ipseccni.tunnel.EspOverhead.worstOf(dev.ipseccni.tunnel.Proposals.DEFAULT.esp(), false).largestInner(lo),
        services.gatewaySettings().mtu(), services.podMtu().derivation());
    assertTrue(services.podMtu().derivation().startsWith("lo MTU " + lo), services.podMtu().derivation());
  }

  @Test
  void anExplicitMtuWins() throws Exception {
    ServiceVerticles services = new ServiceVerticles(parse("{\"nodeName\":\"n\",\"underlayAddress\":\"127.0.0.1\","
        + "\"network\":{\"mtu\":1300}}"));
    assertEquals(1300, services.gatewaySettings().mtu());
    assertEquals("network.mtu", services.podMtu().derivation());
  }

  @Test
  void noLinkForTheUnderlayAddressIsAPreciseError() throws Exception {
    ServiceVerticles services = new ServiceVerticles(parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.254\"}"));
    IllegalStateException e = assertThrows(IllegalStateException.class, services::podMtu);
    assertTrue(e.getMessage().contains("192.0.2.254") && e.getMessage().contains("network.mtu"), e.getMessage());
  }

  @Test
  void clusterTlsFilesReachTheClusterSettings() throws Exception {
    for (String f : List.of("node.crt", "node.key", "ca.crt")) {
      Files.writeString(dir.resolve(f), "PEM");
    }
    AgentConfig c = parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"cluster\":{\"tls\":{"
        + "\"certFile\":\"" + dir.resolve("node.crt") + "\",\"keyFile\":\"" + dir.resolve("node.key")
        + "\",\"caFile\":\"" + dir.resolve("ca.crt") + "\"}}}");
    assertEquals(new dev.ipseccni.bus.ClusterSettings.Tls(dir.resolve("node.crt"), dir.resolve("node.key"),
        dir.resolve("ca.crt")), NodeAgent.clusterSettings(c).tls().orElseThrow());
    assertTrue(NodeAgent.clusterSettings(parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\"}"))
        .tls().isEmpty(), "no cluster.tls, no TLS");
  }

  @Test
  void clusterTlsNeedsAllThreeFilesAndEachMustExist() throws Exception {
    Files.writeString(dir.resolve("node.crt"), "PEM");
    List<String> p = problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"cluster\":{\"tls\":{"
        + "\"certFile\":\"" + dir.resolve("node.crt") + "\",\"keyFile\":\"" + dir.resolve("absent.key")
        + "\"}}}");
    assertEquals(List.of("cluster.tls.keyFile: " + dir.resolve("absent.key") + " does not exist or is not readable",
        "cluster.tls.caFile: required when cluster.tls is set (PEM file)"), p);
  }

  @Test
  void discoveryByDnsReachesTheClusterSettingsInsteadOfTheMemberList() throws Exception {
    AgentConfig c = parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"cluster\":{\"expectedMembers\":3,"
        + "\"discovery\":{\"dns\":\"ipsec-cni.ipsec-cni.svc.cluster.local\"}}}");
    assertEquals(java.util.Optional.of("ipsec-cni.ipsec-cni.svc.cluster.local"),
        NodeAgent.clusterSettings(c).serviceDns());
    assertEquals(3, c.cluster().expectedMembers());
    assertTrue(NodeAgent.clusterSettings(parse("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\"}"))
        .serviceDns().isEmpty(), "no cluster.discovery, the static member list");
  }

  @Test
  void discoveryByDnsNeedsANameAndTheExpectedSizeAndExcludesAMemberList() throws Exception {
    assertEquals(List.of("cluster.discovery.dns: 'not a name!' must be a DNS name (e.g. ipsec-cni.ipsec-cni.svc.cluster.local)",
        "cluster.members: not used with cluster.discovery.dns (the DNS answer is the member list); set one",
        "cluster.expectedMembers: required with cluster.discovery.dns (the number of nodes)"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"cluster\":{"
            + "\"members\":[\"192.0.2.12\"],\"discovery\":{\"dns\":\"not a name!\"}}}"));
    assertEquals(List.of("cluster.discovery.dns: '' must be a DNS name (e.g. ipsec-cni.ipsec-cni.svc.cluster.local)"),
        problems("{\"nodeName\":\"n\",\"underlayAddress\":\"192.0.2.11\",\"cluster\":{\"expectedMembers\":1,"
            + "\"discovery\":{}}}"));
  }
}

package dev.ipseccni.tunnel.identity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The start-up checks of a node's certificate, key and CA, on files the openssl CLI made. */
class NodeIdentityTest {
  @TempDir
  Path dir;
  private Path ca;
  private Path node;

  @BeforeEach
  void caAndNode() throws Exception {
    ca = dir.resolve("ca");
    ClusterCa.initCa(ca, "test CA", Duration.ofDays(30));
    node = dir.resolve("node1");
    ClusterCa.issue(ca, "node1", "192.168.60.1", node, Duration.ofDays(1), Optional.empty());
  }

  private IkeAuth.Certificates files(Path certDir) {
    return new IkeAuth.Certificates(certDir.resolve("node.crt"), certDir.resolve("node.key"),
        certDir.resolve("ca.crt"), Optional.empty());
  }

  private String problem(IkeAuth.Certificates files, String nodeName, Instant now) {
    return assertThrows(IdentityException.class, () -> NodeIdentity.load(files, nodeName, "192.168.60.1", now))
        .getMessage();
  }

  @Test
  void issuedCertificateNamesTheNodeAndItsKeyIsPrivate() throws Exception {
    NodeIdentity id = NodeIdentity.load(files(node), "node1", "192.168.60.1", Instant.now());
    assertEquals("CN=node1", id.certificate().getSubjectX500Principal().getName());
    assertTrue(id.certificate().getSubjectAlternativeNames().toString().contains("node1"));
    assertTrue(id.certificate().getSubjectAlternativeNames().toString().contains("192.168.60.1"));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(node.resolve("node.key"))));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(ca.resolve("ca.key"))));
    assertTrue(id.privateKeyPem().contains("-----BEGIN PRIVATE KEY-----"), "PKCS#8, as charon's pkcs8 plugin reads");
  }

  @Test
  void missingFileIsNamed() {
    IkeAuth.Certificates f = new IkeAuth.Certificates(dir.resolve("nope.crt"), node.resolve("node.key"),
        node.resolve("ca.crt"), Optional.empty());
    assertEquals("charon.certificate: " + dir.resolve("nope.crt") + " does not exist", problem(f, "node1", Instant.now()));
  }

  @Test
  void keyOfAnotherCertificateIsRefused() throws Exception {
    Path other = dir.resolve("node2");
    ClusterCa.issue(ca, "node2", "192.168.60.2", other, Duration.ofDays(1), Optional.empty());
    IkeAuth.Certificates f = new IkeAuth.Certificates(node.resolve("node.crt"), other.resolve("node.key"),
        node.resolve("ca.crt"), Optional.empty());
    String p = problem(f, "node1", Instant.now());
    assertTrue(p.startsWith("charon.privateKey: " + other.resolve("node.key") + " does not belong to the certificate"), p);
  }

  @Test
  void certificateOfAnotherCaIsRefused() throws Exception {
    Path otherCa = dir.resolve("other-ca");
    ClusterCa.initCa(otherCa, "other CA", Duration.ofDays(30));
    IkeAuth.Certificates f = new IkeAuth.Certificates(node.resolve("node.crt"), node.resolve("node.key"),
        otherCa.resolve("ca.crt"), Optional.empty());
    String p = problem(f, "node1", Instant.now());
    assertTrue(p.contains("is not signed by the cluster CA CN=other CA"), p);
  }

  @Test
  void certificateOfAnotherNodeIsRefused() {
    String p = problem(files(node), "node2", Instant.now());
    assertTrue(p.contains("names CN=node1, DNS [node1], but this node is 'node2' (nodeName)"), p);
  }

  @Test
  void otherUnderlayAddressIsRefused() {
    String p = assertThrows(IdentityException.class,
        () -> NodeIdentity.load(files(node), "node1", "192.168.60.9", Instant.now())).getMessage();
    assertTrue(p.contains("names IP [192.168.60.1], but this node's underlayAddress is 192.168.60.9"), p);
  }

  @Test
  void expiredCertificateIsRefused() {
    String p = problem(files(node), "node1", Instant.now().plus(Duration.ofDays(3)));
    assertTrue(p.startsWith("charon.certificate: " + node.resolve("node.crt") + " (CN=node1) expired at "), p);
  }

  @Test
  void renewalWithTheSameKeyKeepsTheKey() throws Exception {
    String key = Files.readString(node.resolve("node.key"));
    String serial = NodeIdentity.load(files(node), "node1", "192.168.60.1", Instant.now()).serial();
    ClusterCa.issue(ca, "node1", "192.168.60.1", node, Duration.ofDays(1), Optional.of(node.resolve("node.key")));
    NodeIdentity renewed = NodeIdentity.load(files(node), "node1", "192.168.60.1", Instant.now());
    assertEquals(key, renewed.privateKeyPem());
    assertTrue(!renewed.serial().equals(serial), "a new certificate");
  }

  @Test
  void deniedNodesFileIgnoresCommentsAndAMissingFileDeniesNobody() throws Exception {
    Path denied = dir.resolve("denied");
    assertEquals(Set.of(), DeniedNodes.read(denied));
    Files.writeString(denied, "# revoked 2026-12-02\nnode3\n\n  node7  # lost laptop\n");
    assertEquals(Set.of("node3", "node7"), DeniedNodes.read(denied));
  }

  @Test
  void existingCaIsNotOverwritten() {
    String p = assertThrows(java.io.IOException.class, () -> ClusterCa.initCa(ca, "again", Duration.ofDays(1)))
        .getMessage();
    assertTrue(p.contains("already holds a CA"), p);
  }
}

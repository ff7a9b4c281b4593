package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.e2e.TunnelLab.Background;
import dev.ipseccni.e2e.TunnelLab.IkeSa;
import dev.ipseccni.tunnel.ClusterSecret;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The cluster secret file replaced under running agents (the lab's nodes share one file,
 * so they all see the change within a reconcile, as nodes do when a Kubernetes Secret is
 * updated): no restart, the tunnel is re-authenticated with the new pair key, the old key
 * leaves charon, every node announces the new secret, and pod traffic keeps flowing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SecretRotationLabTest {
  /** Echoes at 0.1 s that may go unanswered: none did in the runs so far. */
  static final int MAX_LOST = 3;
  static final Duration ROTATED = Duration.ofSeconds(120);

  protected LabHarness lab;
  private String remotePod;

  @BeforeAll
  void twoNodesTwoPods() {
    lab = new LabHarness();
    // a rotation of the cluster secret concerns pre-shared keys only (certificates are the default)
    lab.lab(upArguments());
    lab.lab("pod", "add", "1", "rot1");
    lab.lab("pod", "add", "2", "rot2");
    remotePod = TunnelLab.podAddress(lab, "rot2");
    awaitFullMesh();
  }

  /** The lab this class rotates on: two netns nodes (libipsec). */
  protected String[] upArguments() {
    return new String[] {"up", "2", "--psk"};
  }

  protected void awaitFullMesh() {
    MeshTest.awaitFullMesh(lab, 2);
  }

  /** node1's IKE SA to node2, as its charon lists it. */
  protected IkeSa tunnelToNode2() {
    return TunnelLab.ikeSas(lab, 1).get("peer-node2");
  }

  /** How long the re-authentication may take (re-keying and the agents' reconciles). */
  protected Duration rotated() {
    return ROTATED;
  }

  @AfterAll
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void replacingTheSecretFileReauthenticatesTheTunnelWithoutLosingTraffic() throws Exception {
    Path secretFile = lab.labDir().resolve("cluster-secret");
    String oldKey = ClusterSecret.load(secretFile).pairKey("node1", "node2").reveal();
    IkeSa before = tunnelToNode2();
    assertTrue(before != null && before.state().equals("ESTABLISHED"), "node1 peer-node2: " + before);

    try (Background ping = Background.start(lab, "pod-rot1", "ping", "-n", "-i", "0.1", remotePod)) {
      LabHarness.await(Duration.ofSeconds(60), "the ping loop answered", () -> answered(ping) > 0);
      replace(secretFile);
      ClusterSecret fresh = ClusterSecret.load(secretFile);
      String newKey = fresh.pairKey("node1", "node2").reveal();

      LabHarness.await(rotated(), "both nodes announce secret " + fresh.id(), () -> announced(1, fresh.id())
          && announced(2, fresh.id()));
      LabHarness.await(rotated(), "node1 re-authenticated its tunnel to node2", () -> {
        IkeSa now = tunnelToNode2();
        return now != null && now.state().equals("ESTABLISHED") && !now.uniqueId().equals(before.uniqueId());
      });
      LabHarness.await(rotated(), "both nodes hold the new pair key only", () -> holdsOnly(1, newKey)
          && holdsOnly(2, newKey));
      int now = answered(ping);
      LabHarness.await(Duration.ofSeconds(60), "ten more echoes answered", () -> answered(ping) >= now + 10);
      ping.stop();
      int lost = TunnelAgentRestartTest.lost(ping.stdout());
      System.out.println("BENCH secret-rotation-lost-echoes" + benchSuffix() + " " + lost);
      assertTrue(lost <= MAX_LOST, "echoes lost during the rotation: " + lost + "\n" + ping.stdout());
    }
    for (int node = 1; node <= 2; node++) {
      assertFalse(rendered(node).contains(oldKey), "node" + node + " no longer renders the old pair key");
    }
  }

  protected String benchSuffix() {
    return "";
  }

  /** As a Kubernetes Secret volume changes: a new file, 0600, moved over the old one. */
  private static void replace(Path secretFile) throws IOException {
    byte[] random = new byte[48];
    new SecureRandom().nextBytes(random);
    Path tmp = secretFile.resolveSibling("cluster-secret.new");
    Files.writeString(tmp, Base64.getEncoder().encodeToString(random));
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
    Files.move(tmp, secretFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  /** Whether node {@code node}'s recent events hold a tunnel.secret from it naming {@code id}. */
  private boolean announced(int node, String id) {
    return lab.state(node).map(state -> LabHarness.events(state, "tunnel.secret").stream()
        .anyMatch(e -> e.path("node").asText().equals("node" + node)
            && e.path("payload").path("secretId").asText().equals(id))).orElse(false);
  }

  /** The node's rendered swanctl.conf (what charon was given) holds this key and no second, accepted one. */
  private boolean holdsOnly(int node, String key) {
    String text = rendered(node);
    return text.contains(key) && !text.contains("-accepted");
  }

  private String rendered(int node) {
    try {
      return Files.readString(lab.labDir().resolve("node" + node).resolve("state").resolve("swanctl.conf"));
    } catch (IOException e) {
      return "";
    }
  }

  private static int answered(Background ping) {
    try {
      return (int) ping.stdout().lines().filter(l -> l.contains("bytes from")).count();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }
}

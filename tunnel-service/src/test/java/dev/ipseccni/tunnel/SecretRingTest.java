package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The current and previous cluster secret, and which key a pair offers and accepts. */
class SecretRingTest {
  private static final Duration GRACE = Duration.ofSeconds(60);
  private static final Duration SETTLE = Duration.ofSeconds(2);
  private static final long SECOND = 1_000_000_000L;

  @TempDir
  Path dir;
  private Path file;
  private ClusterSecret old;
  private ClusterSecret fresh;
  private SecretRing ring;

  @BeforeEach
  void oldSecret() throws Exception {
    file = dir.resolve("secret");
    old = ClusterSecret.load(write(file, "old-cluster-secret-0123456789abcdef0123456789"));
    fresh = ClusterSecret.load(write(dir.resolve("other"), "new-cluster-secret-0123456789abcdef0123456789"));
    ring = new SecretRing(file, GRACE, SETTLE, old);
  }

  private static Path write(Path f, String text) throws Exception {
    Path tmp = f.resolveSibling(f.getFileName() + ".tmp");
    Files.writeString(tmp, text);
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
    return Files.move(tmp, f, StandardCopyOption.REPLACE_EXISTING);
  }

  @Test
  void idIsAFingerprintNotTheSecretNorAKey() {
    assertTrue(old.id().matches("[0-9a-f]{16}"));
    assertNotEquals(old.id(), fresh.id());
    String key = old.pairKey("node-a", "node-b").reveal();
    assertFalse(key.contains(old.id()), "the id is no part of a pair key");
  }

  @Test
  void unchangedFileIsNoRotation() {
    assertFalse(ring.refresh(0));
    assertEquals(PairKeys.of(old).describe(), ring.keysFor(old.id()).describe());
    assertEquals(Optional.empty(), ring.previousId());
  }

  @Test
  void newSecretIsOfferedToPeersThatHaveItAndTheOldOneToPeersThatDoNot() throws Exception {
    write(file, "new-cluster-secret-0123456789abcdef0123456789");
    assertTrue(ring.refresh(0));
    assertEquals(fresh.id(), ring.currentId());
    assertEquals(Optional.of(old.id()), ring.previousId());

    assertEquals(old.id() + "+" + fresh.id(), ring.keysFor(old.id()).describe(), "a peer still on the old secret");
    assertEquals(fresh.id() + "+" + old.id(), ring.keysFor(fresh.id()).describe(), "a peer on the new secret");
    assertEquals(fresh.id() + "+" + old.id(), ring.keysFor(null).describe(), "a peer not heard from");
    assertFalse(ring.refresh(SECOND), "read again: no second rotation");
  }

  @Test
  void previousSecretGoesOnceEveryPeerHasHadTheNewOneForTheSettleTimeOrTheGraceIsOver() throws Exception {
    write(file, "new-cluster-secret-0123456789abcdef0123456789");
    ring.refresh(0);
    assertFalse(ring.expire(SECOND, List.of(fresh.id(), old.id())), "one peer still on the old secret");
    assertFalse(ring.expire(SECOND, Arrays.asList(fresh.id(), null)), "one peer not heard from");
    assertFalse(ring.expire(2 * SECOND, List.of(fresh.id(), fresh.id())),
        "every peer moved, but may not know yet that this node did: it may still offer the old key");
    assertFalse(ring.expire(2 * SECOND + SETTLE.toNanos() - 1, List.of(fresh.id(), fresh.id())));
    assertTrue(ring.expire(2 * SECOND + SETTLE.toNanos(), List.of(fresh.id(), fresh.id())), "settled");
    assertEquals(PairKeys.of(fresh).describe(), ring.keysFor(old.id()).describe(), "the old key is gone");

    write(file, "old-cluster-secret-0123456789abcdef0123456789");
    long t = 10 * SECOND;
    ring.refresh(t);
    assertFalse(ring.expire(t + GRACE.toNanos() - 1, List.of(fresh.id())), "within the grace");
    assertTrue(ring.expire(t + GRACE.toNanos(), List.of(fresh.id())), "grace over");
    assertEquals(Optional.empty(), ring.previousId());
  }

  @Test
  void aPeerFallingBackRestartsTheSettleTime() throws Exception {
    write(file, "new-cluster-secret-0123456789abcdef0123456789");
    ring.refresh(0);
    assertFalse(ring.expire(SECOND, List.of(fresh.id())));
    assertFalse(ring.expire(2 * SECOND, List.of(old.id())), "the peer announces the old secret again");
    assertFalse(ring.expire(SECOND + SETTLE.toNanos(), List.of(fresh.id())), "settle counted anew");
    assertTrue(ring.expire(2 * SECOND + 2 * SETTLE.toNanos(), List.of(fresh.id())));
  }

  @Test
  void unusableFileKeepsTheSecretInUse() throws Exception {
    write(file, "short");
    assertFalse(ring.refresh(0));
    Files.writeString(file, "new-cluster-secret-0123456789abcdef0123456789");
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
    assertFalse(ring.refresh(0), "a file readable by others is not taken");
    Files.delete(file);
    assertFalse(ring.refresh(0));
    assertEquals(old.id(), ring.currentId());
  }
}

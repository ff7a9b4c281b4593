package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClusterSecretTest {
  private static final String SECRET = "s3cr3t-of-the-cluster-0123456789abcdef";

  @TempDir
  Path dir;

  private Path secretFile(String content, String mode) throws IOException {
    Path f = dir.resolve("secret");
    Files.writeString(f, content);
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString(mode));
    return f;
  }

  @Test
  void bothEndsOfAPairDeriveTheSameKey() throws Exception {
    ClusterSecret s = ClusterSecret.load(secretFile(SECRET + "\n", "rw-------"));
    assertEquals(s.pairKey("node-a", "node-b"), s.pairKey("node-b", "node-a"));
    assertEquals(64, s.pairKey("node-a", "node-b").reveal().length());
  }

  @Test
  void everyPairHasItsOwnKey() throws Exception {
    ClusterSecret s = ClusterSecret.load(secretFile(SECRET, "rw-------"));
    assertNotEquals(s.pairKey("node-a", "node-b"), s.pairKey("node-a", "node-c"));
    // no ambiguity from joining names
    assertNotEquals(s.pairKey("a", "bc"), s.pairKey("ab", "c"));
  }

  @Test
  void anotherSecretGivesAnotherKey() throws Exception {
    PreSharedKey one = ClusterSecret.load(secretFile(SECRET, "rw-------")).pairKey("x", "y");
    PreSharedKey two = ClusterSecret.load(secretFile(SECRET + "!", "rw-------")).pairKey("x", "y");
    assertNotEquals(one, two);
  }

  @Test
  void trailingNewlineIsNotPartOfTheSecret() throws Exception {
    PreSharedKey plain = ClusterSecret.load(secretFile(SECRET, "rw-------")).pairKey("x", "y");
    PreSharedKey echoed = ClusterSecret.load(secretFile(SECRET + "\n", "rw-------")).pairKey("x", "y");
    assertEquals(plain, echoed);
  }

  @Test
  void missingFileIsAClearError() {
    IOException e = assertThrows(IOException.class, () -> ClusterSecret.load(dir.resolve("nope")));
    assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
  }

  @Test
  void shortSecretIsRefused() throws Exception {
    Path f = secretFile("x".repeat(31), "rw-------");
    IOException e = assertThrows(IOException.class, () -> ClusterSecret.load(f));
    assertTrue(e.getMessage().contains("at least 32"), e.getMessage());
    assertFalse(e.getMessage().contains("xxxxx"), "the secret itself is not in the message");
  }

  @Test
  void fileReadableByGroupOrOthersIsRefused() throws Exception {
    for (String mode : new String[] {"rw-r-----", "rw----r--", "rw-rw-rw-"}) {
      Path f = secretFile(SECRET, mode);
      IOException e = assertThrows(IOException.class, () -> ClusterSecret.load(f), mode);
      assertTrue(e.getMessage().contains("0600"), e.getMessage());
    }
  }

  @Test
  void ownerOnlyModesAreAcceptedWhateverTheOwnersBits() throws Exception {
    for (String mode : new String[] {"r--------", "rw-------", "rwx------"}) {
      assertEquals(32, ClusterSecret.load(secretFile("y".repeat(32), mode)).pairKey("a", "b").reveal().length() / 2,
          mode);
    }
  }

  @Test
  void anyBitForGroupOrOthersIsRefused() throws Exception {
    for (String mode : new String[] {"rw------x", "rw-----w-", "rwx--x---", "r-----r--"}) {
      Path f = secretFile(SECRET, mode);
      IOException e = assertThrows(IOException.class, () -> ClusterSecret.load(f), mode);
      assertTrue(e.getMessage().contains("group and others must have no access"), e.getMessage());
    }
  }

  @Test
  void trailingLineBreakDoesNotCountTowardsTheLength() throws Exception {
    Path f = secretFile("z".repeat(31) + "\n", "rw-------");
    IOException e = assertThrows(IOException.class, () -> ClusterSecret.load(f));
    assertTrue(e.getMessage().contains("a secret of 31 bytes (not counting the 1 trailing line-break and blank bytes)"),
        e.getMessage());
  }

  @Test
  void directoryIsNotASecretFile() throws Exception {
    Path d = Files.createDirectory(dir.resolve("secret.d"));
    IOException e = assertThrows(IOException.class, () -> ClusterSecret.load(d));
    assertTrue(e.getMessage().endsWith(d + " is not a regular file"), e.getMessage());
  }

  @Test
  void secretAndKeysNeverShowInToString() throws Exception {
    ClusterSecret s = ClusterSecret.load(secretFile(SECRET, "rw-------"));
    PreSharedKey k = s.pairKey("node-a", "node-b");
    assertFalse(s.toString().contains(SECRET));
    assertFalse(k.toString().contains(k.reveal()));
    assertTrue(k.toString().contains("redacted"));
  }
}

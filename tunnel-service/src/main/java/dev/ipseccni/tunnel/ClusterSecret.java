package dev.ipseccni.tunnel;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.Set;

/**
 * The cluster secret, read from a file every node has (a Kubernetes Secret, a provisioned
 * file), from which each node pair's PSK is derived: both ends compute the same key, no
 * key ever travels on the bus, and one leaked pair key does not reveal the others.
 *
 * <p>PSK(a, b) = hex(HKDF-SHA256(salt = "ipsec-cni psk v1", ikm = secret,
 * info = min(a,b) NUL max(a,b), L = 32)).
 */
public final class ClusterSecret {
  public static final int MIN_BYTES = 32;
  private static final byte[] SALT = "ipsec-cni psk v1".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] ID_SALT = "ipsec-cni secret id v1".getBytes(StandardCharsets.US_ASCII);
  private static final Set<PosixFilePermission> NOT_ALLOWED = EnumSet.of(
      PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE,
      PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE);

  private final byte[] secret;
  private final String id;

  private ClusterSecret(byte[] secret) {
    this.secret = secret;
    byte[] okm = Hkdf.derive(ID_SALT, secret, new byte[0], 8);
    this.id = HexFormat.of().formatHex(okm);
    Arrays.fill(okm, (byte) 0);
  }

  /**
   * Reads the secret. This is the one check of a secret file: the tunnel service loads it
   * this way and {@code ipsec-cni check-config} asks this method too, so a file that passes
   * the check is a file the service accepts. The rules:
   * <ul>
   *   <li>a regular file (a symbolic link to one, as Kubernetes mounts Secrets, is followed);
   *   <li>no permission bit for group or others, whatever the owner's bits are (0400, 0600
   *       and 0700 pass; 0640, 0604 fail): only group and other bits let anyone else read it;
   *   <li>trailing line breaks, spaces and tabs (as {@code echo} leaves them) are not part of
   *       the secret, and at least {@value #MIN_BYTES} bytes must remain.
   * </ul>
   *
   * @throws IOException with a message an operator can act on, naming the file and never the secret
   */
  public static ClusterSecret load(Path file) throws IOException {
    if (!Files.exists(file)) {
      throw new IOException("cluster secret file " + file + " does not exist (create it with at least " + MIN_BYTES
          + " random bytes, mode 0600: head -c 48 /dev/urandom | base64 > " + file + ")");
    }
    if (!Files.isRegularFile(file)) {
      throw new IOException("cluster secret file " + file + " is not a regular file");
    }
    Set<PosixFilePermission> perms;
    try {
      perms = Files.getPosixFilePermissions(file);
    } catch (NoSuchFileException e) {
      throw new IOException("cluster secret file " + file + " does not exist", e);
    }
    Set<PosixFilePermission> open = EnumSet.copyOf(NOT_ALLOWED);
    open.retainAll(perms);
    if (!open.isEmpty()) {
      throw new IOException("cluster secret file " + file + " has mode " + PosixFilePermissions.toString(perms)
          + ": group and others must have no access to it (chmod 0600)");
    }
    byte[] raw = Files.readAllBytes(file);
    int end = raw.length;
    while (end > 0 && (raw[end - 1] == '\n' || raw[end - 1] == '\r' || raw[end - 1] == ' ' || raw[end - 1] == '\t')) {
      end--;
    }
    byte[] secret = Arrays.copyOf(raw, end);
    Arrays.fill(raw, (byte) 0);
    if (secret.length < MIN_BYTES) {
      int n = secret.length;
      Arrays.fill(secret, (byte) 0);
      throw new IOException("cluster secret file " + file + " holds a secret of " + n + " bytes" + (n < raw.length
          ? " (not counting the " + (raw.length - n) + " trailing line-break and blank bytes)" : "")
          + "; at least " + MIN_BYTES + " are needed (e.g. head -c 48 /dev/urandom | base64 > " + file + ")");
    }
    return new ClusterSecret(secret);
  }

  /** The PSK shared by nodes {@code a} and {@code b}; the same whichever of them asks. */
  public PreSharedKey pairKey(String a, String b) {
    if (a.equals(b)) {
      throw new IllegalArgumentException("a node has no tunnel to itself: " + a);
    }
    String low = a.compareTo(b) < 0 ? a : b;
    String high = a.compareTo(b) < 0 ? b : a;
    byte[] info = (low + '\0' + high).getBytes(StandardCharsets.UTF_8);
    byte[] okm = Hkdf.derive(SALT, secret, info, 32);
    try {
      return new PreSharedKey(HexFormat.of().formatHex(okm));
    } finally {
      Arrays.fill(okm, (byte) 0);
    }
  }

  /**
   * A fingerprint that names this secret on the bus during a rotation: 16 hex digits of
   * HKDF-SHA256(salt = "ipsec-cni secret id v1", ikm = secret). One-way, and derived with a
   * salt no key uses, so it reveals neither the secret nor any pair key.
   */
  public String id() {
    return id;
  }

  /** Whether both hold the same secret (constant time). */
  public boolean sameAs(ClusterSecret other) {
    return java.security.MessageDigest.isEqual(secret, other.secret);
  }

  @Override
  public String toString() {
    return "ClusterSecret[redacted]";
  }
}

package dev.ipseccni.tunnel.identity;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * Makes the cluster CA and node certificates with the openssl command line (the JDK has no
 * public API to sign certificates). Keys are ECDSA P-256 in PKCS#8 PEM, which charon's pem,
 * pkcs8 and openssl plugins load. A node certificate names the node: subject CN = node name,
 * subjectAltName DNS:node name and IP:underlay address; the node's IKE identity is its name.
 *
 * <p>Files: {@code ca.crt} and {@code ca.key} in the CA directory; {@code node.crt},
 * {@code node.key} and a copy of {@code ca.crt} in a node's directory. Keys are written 0600.
 */
public final class ClusterCa {
  public static final String CA_CERT = "ca.crt";
  public static final String CA_KEY = "ca.key";
  public static final String NODE_CERT = "node.crt";
  public static final String NODE_KEY = "node.key";
  public static final Duration DEFAULT_CA_VALIDITY = Duration.ofDays(3650);
  public static final Duration DEFAULT_NODE_VALIDITY = Duration.ofDays(365);

  private ClusterCa() {}

  /** Creates a self-signed CA named {@code name} in {@code dir}; refuses to overwrite one. */
  public static void initCa(Path dir, String name, Duration validity) throws IOException {
    Files.createDirectories(dir);
    Path cert = dir.resolve(CA_CERT);
    Path key = dir.resolve(CA_KEY);
    if (Files.exists(cert) || Files.exists(key)) {
      throw new IOException(dir + " already holds a CA (" + CA_CERT + " or " + CA_KEY + "); remove it first");
    }
    genKey(key);
    openssl("req", "-x509", "-new", "-key", key.toString(), "-days", days(validity), "-subj", "/CN=" + name,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", cert.toString());
  }

  /**
   * Issues a node certificate signed by the CA in {@code caDir} into {@code outDir}. With
   * {@code existingKey} the node keeps its key (a renewal); otherwise a new key is made.
   */
  public static void issue(Path caDir, String nodeName, String address, Path outDir, Duration validity,
                           Optional<Path> existingKey) throws IOException {
    if (!nodeName.matches("[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?")) {
      throw new IOException("node name '" + nodeName + "' is not a DNS name (lower-case letters, digits, '-', '.')");
    }
    if (!address.matches("[0-9.]+|[0-9a-fA-F:]+")) {
      throw new IOException("address '" + address + "' is not an IP address");
    }
    Path caCert = caDir.resolve(CA_CERT);
    Path caKey = caDir.resolve(CA_KEY);
    for (Path p : List.of(caCert, caKey)) {
      if (!Files.isReadable(p)) {
        throw new IOException("CA file " + p + " does not exist or is not readable (make the CA with pki init-ca)");
      }
    }
    Files.createDirectories(outDir);
    Path key = outDir.resolve(NODE_KEY);
    if (existingKey.isPresent()) {
      if (!existingKey.get().toAbsolutePath().equals(key.toAbsolutePath())) {
        writePrivate(key, Files.readAllBytes(existingKey.get()));
      }
    } else {
      genKey(key);
    }
    Path csr = Files.createTempFile(outDir, ".node", ".csr");
    Path ext = Files.createTempFile(outDir, ".node", ".ext");
    Path cert = Files.createTempFile(outDir, ".node", ".crt");
    try {
      Files.writeString(ext, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
          + "subjectAltName=DNS:" + nodeName + ",IP:" + address + "\n");
      openssl("req", "-new", "-key", key.toString(), "-subj", "/CN=" + nodeName, "-out", csr.toString());
      byte[] serial = new byte[16];
      new SecureRandom().nextBytes(serial);
      serial[0] &= 0x7f;
      openssl("x509", "-req", "-in", csr.toString(), "-CA", caCert.toString(), "-CAkey", caKey.toString(),
          "-set_serial", "0x" + HexFormat.of().formatHex(serial), "-days", days(validity),
          "-extfile", ext.toString(), "-out", cert.toString());
      Files.move(cert, outDir.resolve(NODE_CERT), java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      Files.copy(caCert, outDir.resolve(CA_CERT), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(csr);
      Files.deleteIfExists(ext);
      Files.deleteIfExists(cert);
    }
  }

  private static String days(Duration validity) {
    return Long.toString(Math.max(1, validity.toDays()));
  }

  private static void genKey(Path key) throws IOException {
    Path tmp = Files.createTempFile(key.toAbsolutePath().getParent(), ".key", ".tmp",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    try {
      openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", tmp.toString());
      Files.move(tmp, key, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static void writePrivate(Path target, byte[] bytes) throws IOException {
    Path tmp = Files.createTempFile(target.toAbsolutePath().getParent(), ".key", ".tmp",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    try {
      Files.write(tmp, bytes);
      Files.move(tmp, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static void openssl(String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of("openssl"));
    cmd.addAll(List.of(args));
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new IOException("cannot run openssl (install the openssl package): " + e.getMessage(), e);
    }
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (p.waitFor() != 0) {
        throw new IOException("openssl " + args[0] + " failed: " + out);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while openssl ran", e);
    }
  }
}

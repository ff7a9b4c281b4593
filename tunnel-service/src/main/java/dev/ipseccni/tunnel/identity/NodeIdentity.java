package dev.ipseccni.tunnel.identity;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Instant;
import java.util.Base64;
import java.util.Collection;
import java.util.Date;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.security.auth.x500.X500Principal;

/**
 * This node's IKE identity, checked: the certificate is signed by the cluster CA, valid now,
 * names this node (CN and DNS subjectAltName = node name; an IP subjectAltName, when there is
 * one, = the underlay address), and the private key belongs to it. The PEM texts are what
 * charon is given.
 *
 * @param fingerprint SHA-256 over the three files, to notice a renewal
 */
public record NodeIdentity(X509Certificate certificate, X509Certificate ca, String certificatePem,
                           String privateKeyPem, String caPem, String fingerprint) {

  /** Reads and checks the files; a problem is an {@link IdentityException} naming the file and what is wrong. */
  public static NodeIdentity load(IkeAuth.Certificates files, String nodeName, String underlayAddress, Instant now)
      throws IdentityException {
    String certPem = read(files.certificate(), "charon.certificate");
    String keyPem = read(files.privateKey(), "charon.privateKey");
    String caPem = read(files.caCertificate(), "charon.caCertificate");
    X509Certificate cert = certificate(certPem, files.certificate(), "charon.certificate");
    X509Certificate ca = certificate(caPem, files.caCertificate(), "charon.caCertificate");
    if (ca.getBasicConstraints() < 0) {
      throw new IdentityException("charon.caCertificate: " + files.caCertificate() + " (" + subject(ca)
          + ") is not a CA certificate (no basicConstraints CA:TRUE)");
    }
    try {
      cert.verify(ca.getPublicKey());
    } catch (GeneralSecurityException e) {
      throw new IdentityException("charon.certificate: " + files.certificate() + " (" + subject(cert)
          + ", issuer " + cert.getIssuerX500Principal().getName() + ") is not signed by the cluster CA "
          + subject(ca) + " in " + files.caCertificate());
    }
    validNow(cert, files.certificate(), "charon.certificate", now);
    validNow(ca, files.caCertificate(), "charon.caCertificate", now);
    checkNames(cert, files.certificate(), nodeName, underlayAddress);
    PrivateKey key = privateKey(keyPem, files.privateKey(), cert.getPublicKey().getAlgorithm());
    if (!keyMatches(key, cert)) {
      throw new IdentityException("charon.privateKey: " + files.privateKey() + " does not belong to the certificate "
          + files.certificate() + " (" + subject(cert) + "): the key does not match its public key");
    }
    return new NodeIdentity(cert, ca, certPem, keyPem, caPem, fingerprint(certPem, keyPem, caPem));
  }

  /** The certificate's serial number in hex, for logs. */
  public String serial() {
    return certificate.getSerialNumber().toString(16);
  }

  private static String read(Path file, String key) throws IdentityException {
    try {
      return Files.readString(file, StandardCharsets.US_ASCII);
    } catch (NoSuchFileException e) {
      throw new IdentityException(key + ": " + file + " does not exist");
    } catch (IOException e) {
      throw new IdentityException(key + ": cannot read " + file + ": " + e.getMessage());
    }
  }

  private static X509Certificate certificate(String pem, Path file, String key) throws IdentityException {
    if (!pem.contains("-----BEGIN CERTIFICATE-----")) {
      throw new IdentityException(key + ": " + file + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    }
    try {
      return (X509Certificate) CertificateFactory.getInstance("X.509")
          .generateCertificate(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)));
    } catch (CertificateException e) {
      throw new IdentityException(key + ": " + file + " is not a readable X.509 certificate: " + e.getMessage());
    }
  }

  private static void validNow(X509Certificate cert, Path file, String key, Instant now) throws IdentityException {
    try {
      cert.checkValidity(Date.from(now));
    } catch (CertificateExpiredException e) {
      throw new IdentityException(key + ": " + file + " (" + subject(cert) + ") expired at "
          + cert.getNotAfter().toInstant());
    } catch (CertificateNotYetValidException e) {
      throw new IdentityException(key + ": " + file + " (" + subject(cert) + ") is not valid before "
          + cert.getNotBefore().toInstant());
    }
  }

  private static final Pattern CN = Pattern.compile("(?:^|,)CN=([^,]*)");

  private static void checkNames(X509Certificate cert, Path file, String nodeName, String underlayAddress)
      throws IdentityException {
    Matcher cn = CN.matcher(cert.getSubjectX500Principal().getName(X500Principal.RFC2253));
    String commonName = cn.find() ? cn.group(1) : "";
    List<String> dns = new java.util.ArrayList<>();
    List<String> ips = new java.util.ArrayList<>();
    try {
      Collection<List<?>> sans = cert.getSubjectAlternativeNames();
      for (List<?> san : sans == null ? List.<List<?>>of() : sans) {
        int type = (Integer) san.get(0);
        if (type == 2) {
          dns.add(String.valueOf(san.get(1)));
        } else if (type == 7) {
          ips.add(String.valueOf(san.get(1)));
        }
      }
    } catch (CertificateException e) {
      throw new IdentityException("charon.certificate: " + file + ": unreadable subjectAltName: " + e.getMessage());
    }
    if (!commonName.equals(nodeName) || !dns.contains(nodeName)) {
      throw new IdentityException("charon.certificate: " + file + " names CN=" + commonName + ", DNS " + dns
          + ", but this node is '" + nodeName + "' (nodeName): a node's certificate must carry CN and"
          + " subjectAltName DNS = its node name");
    }
    if (!ips.isEmpty() && ips.stream().noneMatch(ip -> sameAddress(ip, underlayAddress))) {
      throw new IdentityException("charon.certificate: " + file + " names IP " + ips + ", but this node's"
          + " underlayAddress is " + underlayAddress);
    }
  }

  private static boolean sameAddress(String a, String b) {
    try {
      return java.net.InetAddress.getByName(a).equals(java.net.InetAddress.getByName(b));
    } catch (java.net.UnknownHostException e) {
      return false;
    }
  }

  private static PrivateKey privateKey(String pem, Path file, String algorithm) throws IdentityException {
    Matcher m = Pattern.compile("-----BEGIN PRIVATE KEY-----(.*?)-----END PRIVATE KEY-----", Pattern.DOTALL)
        .matcher(pem);
    if (!m.find()) {
      throw new IdentityException("charon.privateKey: " + file + " holds no unencrypted PKCS#8 PEM key"
          + " (-----BEGIN PRIVATE KEY-----; convert with openssl pkcs8 -topk8 -nocrypt)");
    }
    try {
      byte[] der = Base64.getMimeDecoder().decode(m.group(1));
      return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new IdentityException("charon.privateKey: " + file + " is not a " + algorithm
          + " private key (the certificate's key type): " + e.getMessage());
    }
  }

  private static boolean keyMatches(PrivateKey key, X509Certificate cert) {
    String alg = switch (key.getAlgorithm()) {
      case "EC" -> "SHA256withECDSA";
      case "RSA" -> "SHA256withRSA";
      default -> key.getAlgorithm(); // Ed25519, Ed448
    };
    try {
      byte[] probe = new byte[32];
      new SecureRandom().nextBytes(probe);
      Signature sign = Signature.getInstance(alg);
      sign.initSign(key);
      sign.update(probe);
      byte[] signature = sign.sign();
      Signature verify = Signature.getInstance(alg);
      verify.initVerify(cert.getPublicKey());
      verify.update(probe);
      return verify.verify(signature);
    } catch (GeneralSecurityException e) {
      return false;
    }
  }

  private static String subject(X509Certificate cert) {
    return cert.getSubjectX500Principal().getName(X500Principal.RFC2253);
  }

  static String fingerprint(String... parts) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      for (String part : parts) {
        sha.update(part.getBytes(StandardCharsets.US_ASCII));
        sha.update((byte) 0);
      }
      return HexFormat.of().formatHex(sha.digest()).substring(0, 16);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public String toString() {
    return "NodeIdentity[" + subject(certificate) + ", serial " + serial() + "]";
  }
}

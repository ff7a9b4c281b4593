package dev.ipseccni.tunnel.identity;

import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;

/** How IKE authenticates the nodes to each other. */
public sealed interface IkeAuth {
  /** Pair keys derived from the cluster secret (every node can derive every pair's key). */
  record Psk() implements IkeAuth {}

  /**
   * Each node its own key and a certificate from the cluster CA naming it; a peer must
   * present the certificate of the node whose lease it serves.
   *
   * @param certificate this node's certificate (PEM)
   * @param privateKey its private key (PEM, PKCS#8 or PKCS#1)
   * @param caCertificate the cluster CA's certificate (PEM)
   * @param deniedNodes a file of node names (one a line, '#' comments) whose tunnels and leases are
   *     not served and whose certificates are refused; re-read every reconcile
   */
  record Certificates(Path certificate, Path privateKey, Path caCertificate, Optional<Path> deniedNodes)
      implements IkeAuth {
    public Certificates {
      Objects.requireNonNull(certificate, "certificate");
      Objects.requireNonNull(privateKey, "privateKey");
      Objects.requireNonNull(caCertificate, "caCertificate");
      Objects.requireNonNull(deniedNodes, "deniedNodes");
    }
  }
}

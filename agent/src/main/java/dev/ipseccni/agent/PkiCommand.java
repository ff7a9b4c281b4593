package dev.ipseccni.agent;

import dev.ipseccni.tunnel.identity.ClusterCa;
import dev.ipseccni.tunnel.identity.IdentityException;
import dev.ipseccni.tunnel.identity.IkeAuth;
import dev.ipseccni.tunnel.identity.NodeIdentity;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The cluster CA and the nodes' IKE certificates (with the openssl command line): make the
 * CA once, keep its key off the nodes, issue each node a certificate naming it.
 */
@Command(name = "pki", description = "Make the cluster CA and node certificates for IKE.",
    subcommands = {PkiCommand.InitCa.class, PkiCommand.Issue.class})
final class PkiCommand implements Runnable {
  @Override
  public void run() {
    System.err.println("pki: say init-ca or issue (ipsec-cni pki --help)");
  }

  @Command(name = "init-ca", description = "Create the cluster CA (ca.crt, ca.key 0600) in a directory.")
  static final class InitCa implements Callable<Integer> {
    @Option(names = "--dir", required = true, description = "directory for ca.crt and ca.key")
    Path dir;

    @Option(names = "--name", defaultValue = "ipsec-cni cluster CA", description = "the CA's subject CN")
    String name;

    @Option(names = "--days", defaultValue = "3650", description = "validity in days")
    int days;

    @Override
    public Integer call() {
      try {
        ClusterCa.initCa(dir, name, Duration.ofDays(days));
        System.out.println("cluster CA in " + dir.resolve(ClusterCa.CA_CERT) + " (key " + dir.resolve(ClusterCa.CA_KEY)
            + ": keep it off the nodes)");
        return 0;
      } catch (IOException e) {
        System.err.println("pki init-ca: " + e.getMessage());
        return 1;
      }
    }
  }

  @Command(name = "issue", description = "Issue a node's key and certificate (CN and DNS = node name, IP = address).")
  static final class Issue implements Callable<Integer> {
    @Option(names = "--ca", required = true, description = "the CA directory (ca.crt, ca.key)")
    Path ca;

    @Option(names = "--node", required = true, description = "the node's name (its nodeName and IKE identity)")
    String node;

    @Option(names = "--address", required = true, description = "the node's underlay address")
    String address;

    @Option(names = "--out", required = true, description = "directory for node.crt, node.key (0600) and ca.crt")
    Path out;

    @Option(names = "--days", defaultValue = "365", description = "validity in days")
    int days;

    @Option(names = "--keep-key", description = "renew with the key already in --out (default: a new key)")
    boolean keepKey;

    @Override
    public Integer call() {
      try {
        ClusterCa.issue(ca, node, address, out, Duration.ofDays(days),
            keepKey ? Optional.of(out.resolve(ClusterCa.NODE_KEY)) : Optional.empty());
        NodeIdentity id = NodeIdentity.load(new IkeAuth.Certificates(out.resolve(ClusterCa.NODE_CERT),
            out.resolve(ClusterCa.NODE_KEY), out.resolve(ClusterCa.CA_CERT), Optional.empty()), node, address,
            Instant.now());
        System.out.println(node + ": " + out.resolve(ClusterCa.NODE_CERT) + " (serial " + id.serial() + ", until "
            + id.certificate().getNotAfter().toInstant() + ")");
        return 0;
      } catch (IOException | IdentityException e) {
        System.err.println("pki issue: " + e.getMessage());
        return 1;
      }
    }
  }
}

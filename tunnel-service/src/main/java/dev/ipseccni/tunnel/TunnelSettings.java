package dev.ipseccni.tunnel;

import java.nio.file.Path;
import java.time.Duration;
import dev.ipseccni.tunnel.identity.IkeAuth;
import java.util.Objects;

/**
 * The tunnel service's configuration, validated when built.
 *
 * @param nodeName this node's name (its IKE identity, and how its lease is recognised)
 * @param underlayAddress this node's underlay IP, the local tunnel endpoint
 * @param viciSocket charon's VICI socket
 * @param secretFile cluster secret file (no access for group or others; see ClusterSecret#load) the pair keys are derived from
 * @param datapath kernel XFRM or libipsec
 * @param proposals IKE and ESP proposals
 * @param reconcileInterval how often desired tunnels are compared with charon's state
 * @param renderedConfig where the swanctl.conf equivalent of the loaded state is written (0600: it holds keys)
 * @param secretGrace how long, at most, the previous cluster secret stays accepted after the
 *     secret file changed (it goes earlier, once every peer announces the new one)
 * @param auth how IKE authenticates: per-node certificates, or pair keys from the cluster secret
 */
public record TunnelSettings(String nodeName, String underlayAddress, Path viciSocket, Path secretFile,
                             Datapath datapath, Proposals proposals, Duration reconcileInterval,
                             Path renderedConfig, Duration secretGrace, IkeAuth auth) {
  public static final Duration DEFAULT_RECONCILE_INTERVAL = Duration.ofSeconds(10);
  public static final Duration DEFAULT_SECRET_GRACE = Duration.ofHours(1);

  public TunnelSettings {
    Objects.requireNonNull(nodeName, "nodeName");
    Objects.requireNonNull(underlayAddress, "underlayAddress");
    Objects.requireNonNull(viciSocket, "viciSocket");
    Objects.requireNonNull(secretFile, "secretFile");
    Objects.requireNonNull(datapath, "datapath");
    Objects.requireNonNull(proposals, "proposals");
    Objects.requireNonNull(reconcileInterval, "reconcileInterval");
    Objects.requireNonNull(renderedConfig, "renderedConfig");
    Objects.requireNonNull(secretGrace, "secretGrace");
    Objects.requireNonNull(auth, "auth");
    if (nodeName.isBlank()) {
      throw new IllegalArgumentException("tunnel nodeName must not be blank");
    }
    if (!underlayAddress.matches("[0-9.]+|[0-9a-fA-F:]+")) {
      throw new IllegalArgumentException("tunnel underlayAddress must be an IP address, got '" + underlayAddress + "'");
    }
    if (reconcileInterval.isNegative() || reconcileInterval.toMillis() < 100) {
      throw new IllegalArgumentException("tunnel reconcileInterval must be at least 100 ms, got " + reconcileInterval);
    }
    if (secretGrace.isNegative()) {
      throw new IllegalArgumentException("tunnel secretGrace must not be negative, got " + secretGrace);
    }
  }

  /** Pre-shared keys from the cluster secret. */
  public TunnelSettings(String nodeName, String underlayAddress, Path viciSocket, Path secretFile, Datapath datapath,
                        Proposals proposals, Duration reconcileInterval, Path renderedConfig, Duration secretGrace) {
    this(nodeName, underlayAddress, viciSocket, secretFile, datapath, proposals, reconcileInterval, renderedConfig,
        secretGrace, new IkeAuth.Psk());
  }

  /** Whether IKE authenticates with pair keys from the cluster secret. */
  public boolean psk() {
    return auth instanceof IkeAuth.Psk;
  }


  /** Default proposals, reconcile interval and secret grace. */
  public static TunnelSettings of(String nodeName, String underlayAddress, Path viciSocket, Path secretFile,
                                  Datapath datapath, Path renderedConfig) {
    return new TunnelSettings(nodeName, underlayAddress, viciSocket, secretFile, datapath, Proposals.DEFAULT,
        DEFAULT_RECONCILE_INTERVAL, renderedConfig, DEFAULT_SECRET_GRACE);
  }
}

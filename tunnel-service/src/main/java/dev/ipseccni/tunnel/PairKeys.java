package dev.ipseccni.tunnel;

import java.util.Objects;
import java.util.Optional;

/**
 * The secrets one node pair's keys come from: the one offered when authenticating, and,
 * while the cluster secret rotates, one also accepted from the peer.
 */
public record PairKeys(ClusterSecret offered, Optional<ClusterSecret> accepted) {
  public PairKeys {
    Objects.requireNonNull(offered, "offered");
    Objects.requireNonNull(accepted, "accepted");
  }

  /** Outside a rotation: one secret, offered and accepted. */
  public static PairKeys of(ClusterSecret secret) {
    return new PairKeys(secret, Optional.empty());
  }

  /** What charon must hold for this pair, as secret ids (never keys): compared to know when to reload. */
  String describe() {
    return offered.id() + accepted.map(a -> "+" + a.id()).orElse("");
  }
}

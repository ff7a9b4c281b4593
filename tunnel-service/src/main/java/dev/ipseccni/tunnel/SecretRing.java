package dev.ipseccni.tunnel;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * The secrets pair keys are derived from: the current one, and during a rotation the one
 * before it. The secret file is read again on every reconcile; a new secret becomes current
 * and the old one stays for as long as a peer may still use it: until every peer has
 * announced the new one and has had {@code settle} to learn that this node has it too (a
 * peer offers the old key to a node it believes is still on the old secret), at most
 * {@code grace}. A file that cannot be used (missing, too
 * short, readable by others) is logged and ignored: a broken rotation must not cut the
 * mesh. Touched only by the tunnel service's VICI worker.
 *
 * <p>Which key a pair uses follows from the peer's announced secret (see
 * {@link #keysFor(String)}): charon authenticates with the best-matching key and accepts
 * any matching one, so the key both sides hold is the one offered, and the other is
 * accepted.
 */
final class SecretRing {
  private static final Logger LOG = Logger.getLogger(SecretRing.class.getName());

  private final Path file;
  private final Duration grace;
  private final Duration settle;
  private ClusterSecret current;
  private String currentId;
  private ClusterSecret previous;
  private String previousId;
  private long previousUntil;
  private long allMovedSince;
  private boolean allMoved;
  private String lastProblem;

  SecretRing(Path file, Duration grace, Duration settle, ClusterSecret initial) {
    this.file = file;
    this.grace = grace;
    this.settle = settle;
    this.current = initial;
    this.currentId = initial.id();
  }

  String currentId() {
    return currentId;
  }

  Optional<String> previousId() {
    return Optional.ofNullable(previousId);
  }

  /** Reads the file again; true when it holds a new secret, which is then current. */
  boolean refresh(long nowNanos) {
    ClusterSecret read;
    try {
      read = ClusterSecret.load(file);
    } catch (IOException e) {
      String problem = e.getMessage();
      if (!problem.equals(lastProblem)) {
        LOG.warning("cluster secret not reloaded, keeping the one in use: " + problem);
        lastProblem = problem;
      }
      return false;
    }
    lastProblem = null;
    if (read.sameAs(current)) {
      return false;
    }
    if (previous != null && read.sameAs(previous)) {
      // The file was put back before the rotation finished: the old secret is current again.
      LOG.warning("cluster secret " + previousId + " is back in " + file + "; " + currentId + " is dropped");
    }
    previous = current;
    previousId = currentId;
    previousUntil = nowNanos + grace.toNanos();
    allMoved = false;
    current = read;
    currentId = read.id();
    LOG.info("cluster secret " + currentId + " loaded from " + file + "; " + previousId
        + " stays accepted until every peer announces the new one (at most " + grace.toSeconds() + " s)");
    return true;
  }

  /**
   * Forgets the previous secret once no peer needs it: every one of {@code peerIds} (the
   * announced ids of the peers with tunnels; null for a peer not heard from) has been the
   * current id for {@code settle}, or the grace is over.
   *
   * @return true when the previous secret was dropped now
   */
  boolean expire(long nowNanos, Collection<String> peerIds) {
    if (previous == null) {
      return false;
    }
    boolean moved = peerIds.stream().allMatch(currentId::equals);
    if (moved && !allMoved) {
      allMovedSince = nowNanos;
    }
    allMoved = moved;
    boolean settled = moved && nowNanos - allMovedSince - settle.toNanos() >= 0;
    if (!settled && nowNanos - previousUntil < 0) {
      return false;
    }
    LOG.info("cluster secret " + previousId + " dropped: " + (settled ? "every peer uses " + currentId
        : "grace of " + grace.toSeconds() + " s over; peers still on it can no longer authenticate"));
    previous = null;
    previousId = null;
    return true;
  }

  /**
   * The keys of the pair with a peer that announced {@code peerSecretId} (null when not
   * heard from). A peer still on the previous secret holds only the old key, so that one
   * is offered; otherwise the current one. During a rotation the other is accepted too.
   */
  PairKeys keysFor(String peerSecretId) {
    if (previous == null) {
      return new PairKeys(current, Optional.empty());
    }
    if (previousId.equals(peerSecretId)) {
      return new PairKeys(previous, Optional.of(current));
    }
    return new PairKeys(current, Optional.of(previous));
  }
}

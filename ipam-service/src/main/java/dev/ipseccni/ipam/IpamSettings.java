package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The IPAM service's configuration, checked by {@link #validate()} before the service starts.
 *
 * @param nodeName this node's name: the lease holder and the event sender
 * @param underlayAddress the node's underlay address, recorded in the lease (the tunnel endpoint)
 * @param network the CNI network name the allocations belong to
 * @param clusterCidr the pod address space of the whole cluster, e.g. 10.128.0.0/16
 * @param blockPrefixLength each node's block, e.g. 24
 * @param preferredBlock the block this node asks for first, e.g. 10.128.1.0/24
 * @param journalDir where the allocation journal lives (a tmpfs like /run: cleared by a reboot)
 * @param renewInterval how often the lease is renewed
 * @param gracePeriod a lease not renewed for this long may be taken by another node
 * @param claimRetryInterval how often a claim is retried while no majority is present
 * @param expectedMembers cluster size; claims need a majority of it
 * @param compactAfterRecords the journal is rewritten after this many records (and at twice the live count)
 * @param mirrorDelay how long allocations and releases are collected before they are written to the cluster's
 *     address mirror as one batch (the mirror is for inspection and duplicate detection, not on the ADD path)
 */
public record IpamSettings(String nodeName, String underlayAddress, String network, String clusterCidr,
                           int blockPrefixLength, Optional<String> preferredBlock, Path journalDir,
                           Duration renewInterval, Duration gracePeriod, Duration claimRetryInterval,
                           int expectedMembers, int compactAfterRecords, Duration mirrorDelay) {

  public static final String DEFAULT_CLUSTER_CIDR = "10.128.0.0/16";
  public static final int DEFAULT_BLOCK_PREFIX_LENGTH = 24;
  public static final Path DEFAULT_JOURNAL_DIR = Path.of("/run/ipsec-cni/ipam");
  public static final Duration DEFAULT_RENEW_INTERVAL = Duration.ofSeconds(30);
  public static final Duration DEFAULT_GRACE_PERIOD = Duration.ofMinutes(10);
  public static final Duration DEFAULT_CLAIM_RETRY = Duration.ofSeconds(1);
  public static final int DEFAULT_COMPACT_AFTER_RECORDS = 10_000;
  public static final Duration DEFAULT_MIRROR_DELAY = Duration.ofMillis(500);

  public IpamSettings {
    Objects.requireNonNull(nodeName, "nodeName");
    Objects.requireNonNull(underlayAddress, "underlayAddress");
    Objects.requireNonNull(network, "network");
    Objects.requireNonNull(clusterCidr, "clusterCidr");
    Objects.requireNonNull(preferredBlock, "preferredBlock");
    Objects.requireNonNull(journalDir, "journalDir");
    Objects.requireNonNull(renewInterval, "renewInterval");
    Objects.requireNonNull(gracePeriod, "gracePeriod");
    Objects.requireNonNull(claimRetryInterval, "claimRetryInterval");
    Objects.requireNonNull(mirrorDelay, "mirrorDelay");
  }

  /** The defaults of every value but the node's own. */
  public static IpamSettings defaults(String nodeName, String underlayAddress, String network, int expectedMembers) {
    return new IpamSettings(nodeName, underlayAddress, network, DEFAULT_CLUSTER_CIDR, DEFAULT_BLOCK_PREFIX_LENGTH,
        Optional.empty(), DEFAULT_JOURNAL_DIR, DEFAULT_RENEW_INTERVAL, DEFAULT_GRACE_PERIOD, DEFAULT_CLAIM_RETRY,
        expectedMembers, DEFAULT_COMPACT_AFTER_RECORDS, DEFAULT_MIRROR_DELAY);
  }

  public IpamSettings withPreferredBlock(String block) {
    return new IpamSettings(nodeName, underlayAddress, network, clusterCidr, blockPrefixLength,
        Optional.of(block), journalDir, renewInterval, gracePeriod, claimRetryInterval, expectedMembers,
        compactAfterRecords, mirrorDelay);
  }

  public IpamSettings withJournalDir(Path dir) {
    return new IpamSettings(nodeName, underlayAddress, network, clusterCidr, blockPrefixLength,
        preferredBlock, dir, renewInterval, gracePeriod, claimRetryInterval, expectedMembers, compactAfterRecords,
        mirrorDelay);
  }

  public IpamSettings withTimings(Duration renew, Duration grace, Duration claimRetry) {
    return new IpamSettings(nodeName, underlayAddress, network, clusterCidr, blockPrefixLength,
        preferredBlock, journalDir, renew, grace, claimRetry, expectedMembers, compactAfterRecords, mirrorDelay);
  }

  public IpamSettings withNetwork(String cidr, int blockLength) {
    return new IpamSettings(nodeName, underlayAddress, network, cidr, blockLength,
        preferredBlock, journalDir, renewInterval, gracePeriod, claimRetryInterval, expectedMembers,
        compactAfterRecords, mirrorDelay);
  }

  public IpamSettings withCompactAfterRecords(int records) {
    return new IpamSettings(nodeName, underlayAddress, network, clusterCidr, blockPrefixLength,
        preferredBlock, journalDir, renewInterval, gracePeriod, claimRetryInterval, expectedMembers, records,
        mirrorDelay);
  }

  public IpamSettings withMirrorDelay(Duration delay) {
    return new IpamSettings(nodeName, underlayAddress, network, clusterCidr, blockPrefixLength,
        preferredBlock, journalDir, renewInterval, gracePeriod, claimRetryInterval, expectedMembers,
        compactAfterRecords, delay);
  }

  /** The cut of the cluster CIDR; call only on settings without {@link #validate() errors}. */
  public NodeBlocks blocks() {
    return NodeBlocks.of(clusterCidr, blockPrefixLength);
  }

  /** Members needed to claim a block: a strict majority of the expected members. */
  public int majority() {
    return majority(expectedMembers);
  }

  public static int majority(int expectedMembers) {
    return expectedMembers / 2 + 1;
  }

  /** Every problem, one human-readable line each; empty when the settings are usable. */
  public List<String> validate() {
    List<String> errors = new ArrayList<>();
    if (nodeName.isBlank()) {
      errors.add("nodeName: must not be empty");
    }
    try {
      IpPrefix.parseAddress(underlayAddress);
    } catch (IllegalArgumentException e) {
      errors.add("underlayAddress: " + e.getMessage());
    }
    if (network.isBlank()) {
      errors.add("network.name: must not be empty");
    }
    NodeBlocks blocks = null;
    try {
      blocks = NodeBlocks.of(clusterCidr, blockPrefixLength);
    } catch (IllegalArgumentException e) {
      errors.add("network.clusterCidr / blockPrefixLength: " + e.getMessage());
    }
    if (preferredBlock.isPresent()) {
      try {
        IpPrefix preferred = IpPrefix.parse(preferredBlock.get());
        if (blocks != null && !blocks.isBlock(preferred)) {
          errors.add("network.preferredBlock: " + preferred + " is not a /" + blockPrefixLength
              + " block inside " + clusterCidr);
        }
      } catch (IllegalArgumentException e) {
        errors.add("network.preferredBlock: " + e.getMessage());
      }
    }
    if (!journalDir.isAbsolute()) {
      errors.add("ipam journal directory: " + journalDir + " is not an absolute path");
    }
    if (renewInterval.isNegative() || renewInterval.isZero()) {
      errors.add("lease renew interval: must be positive, not " + renewInterval);
    }
    if (gracePeriod.compareTo(renewInterval.multipliedBy(3)) < 0) {
      errors.add("lease grace period " + gracePeriod + " must be at least three renew intervals ("
          + renewInterval.multipliedBy(3) + "), or a live node could lose its block");
    }
    if (claimRetryInterval.isNegative() || claimRetryInterval.isZero()) {
      errors.add("claim retry interval: must be positive, not " + claimRetryInterval);
    }
    if (expectedMembers < 1) {
      errors.add("cluster.expectedMembers: must be at least 1, not " + expectedMembers);
    }
    if (compactAfterRecords < 1) {
      errors.add("journal compaction threshold: must be at least 1, not " + compactAfterRecords);
    }
    if (mirrorDelay.toMillis() < 1) {
      errors.add("address mirror delay: must be at least 1 ms, not " + mirrorDelay);
    }
    return errors;
  }
}

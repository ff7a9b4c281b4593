package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import com.hazelcast.config.Config;
import com.hazelcast.config.MapConfig;
import com.hazelcast.config.MergePolicyConfig;
import com.hazelcast.config.SplitBrainProtectionConfig;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.EntryProcessor;
import com.hazelcast.map.IMap;
import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.spi.merge.MergingValue;
import com.hazelcast.spi.merge.SplitBrainMergePolicy;
import com.hazelcast.splitbrainprotection.SplitBrainProtectionOn;
import dev.ipseccni.bus.JsonRecordCodec;
import dev.ipseccni.bus.message.NodeBlockLease;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * The cluster's block leases: a Hazelcast map from block (CIDR text) to the
 * {@link NodeBlockLease} holding it, stored as JSON. Every change is an entry processor
 * on the block's key, so a claim is atomic; writes need a majority of the expected
 * members (split-brain protection), so two halves of a partition never claim the same
 * block. Methods block on the cluster: call them from a worker thread.
 *
 * <p>A released block keeps a tombstone, {@code released:<epoch>}, in place of its lease, so
 * the next claim of it gets the next epoch: epochs of a block never go backwards, and a
 * stale lease (a release or a renewal seen late) can always be told from the current one.
 * Readers of this class never see tombstones as leases.
 */
public final class BlockLeases {
  public static final String LEASE_MAP = "ipsec-cni.ipam.block-leases";
  /** The cluster CIDR and block size the leases were cut with. */
  public static final String NETWORK_MAP = "ipsec-cni.ipam.network";
  /** Every pod address in the cluster, for inspection and duplicate detection (mirrored, not authoritative). */
  public static final String ADDRESS_MAP = "ipsec-cni.ipam.pod-addresses";
  public static final String MAJORITY = "ipsec-cni.ipam.majority";
  private static final String NETWORK_KEY = "network";

  private final IMap<String, String> leases;
  private final IMap<String, String> network;
  private final NodeBlocks blocks;
  private final long graceMillis;

  public BlockLeases(HazelcastInstance hz, NodeBlocks blocks, Duration gracePeriod) {
    this.leases = hz.getMap(LEASE_MAP);
    this.network = hz.getMap(NETWORK_MAP);
    this.blocks = blocks;
    this.graceMillis = gracePeriod.toMillis();
  }

  /**
   * Adds the lease maps' configuration (split-brain protection: writes need
   * {@code expectedMembers / 2 + 1} members) to a Hazelcast config before the cluster starts.
   */
  public static void configure(Config config, int expectedMembers) {
    int majority = IpamSettings.majority(expectedMembers);
    config.addSplitBrainProtectionConfig(new SplitBrainProtectionConfig(MAJORITY, true, majority)
        .setProtectOn(SplitBrainProtectionOn.WRITE));
    for (String name : List.of(LEASE_MAP, NETWORK_MAP)) {
      config.addMapConfig(new MapConfig(name).setBackupCount(2).setSplitBrainProtectionName(MAJORITY));
    }
    // After a split the default merge (put-if-absent) could keep the minority's stale lease
    // over the majority's newer claim of the block: the higher epoch must win.
    config.getMapConfig(LEASE_MAP).setMergePolicyConfig(new MergePolicyConfig(HigherEpochWins.class.getName(),
        MergePolicyConfig.DEFAULT_BATCH_SIZE));
    config.addMapConfig(new MapConfig(ADDRESS_MAP).setBackupCount(1));
  }

  /** {@link #configure} as a customizer for {@code ClusterBootstrap.join}. */
  public static Consumer<Config> customizer(int expectedMembers) {
    return config -> configure(config, expectedMembers);
  }

  /** No block is free and none has expired. */
  public static final class NoFreeBlockException extends Exception {
    NoFreeBlockException(String message) {
      super(message);
    }
  }

  /** The cluster's leases were cut from another CIDR or block size, and some are live. */
  public static final class NetworkConflictException extends Exception {
    NetworkConflictException(String message) {
      super(message);
    }
  }

  /** Every lease, by block, sorted (released blocks are not leases). */
  public Map<String, NodeBlockLease> all() {
    Map<String, NodeBlockLease> all = new TreeMap<>();
    leases.entrySet().forEach(e -> {
      if (!isTombstone(e.getValue())) {
        all.put(e.getKey(), decode(e.getValue()));
      }
    });
    return all;
  }

  public Optional<NodeBlockLease> get(String block) {
    return Optional.ofNullable(leases.get(block)).filter(v -> !isTombstone(v)).map(BlockLeases::decode);
  }

  /** The epoch of the block's last released lease, if it was ever released. */
  Optional<Long> releasedEpoch(String block) {
    String value = leases.get(block);
    return isTombstone(value) ? Optional.of(tombstoneEpoch(value)) : Optional.empty();
  }

  private static final String TOMBSTONE = "released:";

  static boolean isTombstone(String value) {
    return value != null && value.startsWith(TOMBSTONE);
  }

  static long tombstoneEpoch(String value) {
    return Long.parseLong(value.substring(TOMBSTONE.length()));
  }

  static String tombstone(NodeBlockLease released) {
    return TOMBSTONE + released.epoch();
  }

  /**
   * What is wrong if this node's CIDR and block size differ from the ones the cluster's live
   * leases were cut with; empty when they match or no lease is live. Needs no majority.
   */
  public Optional<String> networkConflict() {
    String recorded = network.get(NETWORK_KEY);
    String ours = describe(blocks);
    if (recorded == null || recorded.equals(ours)) {
      return Optional.empty();
    }
    long now = System.currentTimeMillis();
    List<String> live = all().values().stream().filter(l -> !expired(l, now)).map(NodeBlockLease::node)
        .distinct().toList();
    if (live.isEmpty()) {
      return Optional.empty();
    }
    String holders = live.size() <= 5 ? live.toString()
        : live.subList(0, 5) + " and " + (live.size() - 5) + " more";
    return Optional.of("the cluster's pod network is " + recorded + " with live leases of " + holders
        + ", but this node is configured with " + ours + ": refusing to change the cluster CIDR or block size"
        + " under live leases (remove the nodes' pods and let their leases expire first, or restore the setting)");
  }

  /**
   * Claims a block for {@code node}: its own lease if the cluster holds one, else the first of
   * {@code hints} that is free (e.g. the journal's block, the preferred block), else the
   * first free block, else the first block whose lease expired.
   *
   * @throws com.hazelcast.splitbrainprotection.SplitBrainProtectionException when no majority is present
   */
  public NodeBlockLease claim(String node, String underlayAddress, List<IpPrefix> hints)
      throws NoFreeBlockException, NetworkConflictException {
    recordNetwork();
    Map<String, NodeBlockLease> all = all();
    long now = System.currentTimeMillis();
    Set<String> candidates = new LinkedHashSet<>();
    all.values().stream().filter(l -> l.node().equals(node)).map(NodeBlockLease::block)
        .filter(this::isOurBlock).forEach(candidates::add);
    hints.stream().filter(blocks::isBlock).map(IpPrefix::toString)
        .filter(b -> !all.containsKey(b) || expired(all.get(b), now)).forEach(candidates::add);
    for (long i = 0; i < blocks.blockCount(); i++) {
      String block = blocks.block(i).toString();
      if (!all.containsKey(block)) {
        candidates.add(block);
      }
    }
    all.values().stream().filter(l -> expired(l, now)).map(NodeBlockLease::block).filter(this::isOurBlock)
        .forEach(candidates::add);
    for (String block : candidates) {
      NodeBlockLease holder = decode(leases.executeOnKey(block, new ClaimBlock(node, underlayAddress, graceMillis)));
      if (holder.node().equals(node)) {
        return holder;
      }
    }
    throw new NoFreeBlockException("node " + node + ": no free block, all " + blocks.blockCount() + " /"
        + blocks.blockPrefixLength() + " blocks of " + blocks.clusterCidr() + " are held by live nodes");
  }

  /**
   * Renews {@code held}; returns the block's lease as the cluster now has it (someone else's
   * if the block was lost). Puts the lease back if the cluster lost the entry.
   */
  public NodeBlockLease renew(NodeBlockLease held) {
    return decode(leases.executeOnKey(held.block(), new RenewLease(encode(held))));
  }

  /** Removes every lease not renewed within the grace period; returns what was removed. */
  public List<NodeBlockLease> releaseExpired() {
    long now = System.currentTimeMillis();
    List<NodeBlockLease> released = new ArrayList<>();
    for (NodeBlockLease lease : all().values()) {
      if (expired(lease, now)) {
        String removed = leases.executeOnKey(lease.block(), new ReleaseIfExpired(graceMillis));
        if (removed != null) {
          released.add(decode(removed));
        }
      }
    }
    return released;
  }

  /** Removes {@code node}'s lease on {@code block} (a node leaving for good); false if not held by it. */
  public boolean release(String node, String block) {
    return Boolean.TRUE.equals(leases.executeOnKey(block, new ReleaseHeld(node)));
  }

  private void recordNetwork() throws NetworkConflictException {
    Optional<String> conflict = networkConflict();
    if (conflict.isPresent()) {
      throw new NetworkConflictException(conflict.get());
    }
    String ours = describe(blocks);
    String previous = network.putIfAbsent(NETWORK_KEY, ours);
    if (previous != null && !previous.equals(ours)) {
      // No live lease was cut from the old setting (checked above): the new one takes over.
      network.put(NETWORK_KEY, ours);
    }
  }

  private boolean isOurBlock(String block) {
    try {
      return blocks.isBlock(IpPrefix.parse(block));
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private boolean expired(NodeBlockLease lease, long now) {
    return now - lease.renewedAtMillis() > graceMillis;
  }

  static String describe(NodeBlocks blocks) {
    return blocks.clusterCidr() + " in /" + blocks.blockPrefixLength() + " blocks";
  }

  static NodeBlockLease decode(String json) {
    return JsonRecordCodec.fromJson(json.getBytes(StandardCharsets.UTF_8), NodeBlockLease.class);
  }

  static String encode(NodeBlockLease lease) {
    return new String(JsonRecordCodec.toJson(lease), StandardCharsets.UTF_8);
  }

  /**
   * The split-brain merge of the lease map: of the two values of a block, the one with the
   * higher epoch wins, a tombstone counting with its epoch; at equal epochs a tombstone wins
   * over the lease it released, and of two leases the later renewal. So a block's epoch never
   * goes backwards across a merge either.
   */
  public static final class HigherEpochWins implements SplitBrainMergePolicy<String, MergingValue<String>, Object> {
    @Override
    public Object merge(MergingValue<String> merging, MergingValue<String> existing) {
      if (existing == null || existing.getValue() == null) {
        return merging.getRawValue();
      }
      if (merging == null || merging.getValue() == null) {
        return existing.getRawValue();
      }
      return newer(merging.getValue(), existing.getValue()) ? merging.getRawValue() : existing.getRawValue();
    }

    /** Whether lease-map value {@code a} is newer than {@code b}. */
    static boolean newer(String a, String b) {
      long epochA = isTombstone(a) ? tombstoneEpoch(a) : decode(a).epoch();
      long epochB = isTombstone(b) ? tombstoneEpoch(b) : decode(b).epoch();
      if (epochA != epochB) {
        return epochA > epochB;
      }
      if (isTombstone(a) || isTombstone(b)) {
        return isTombstone(a) && !isTombstone(b);
      }
      return decode(a).renewedAtMillis() > decode(b).renewedAtMillis();
    }

    @Override
    public void writeData(ObjectDataOutput out) {
      // no state
    }

    @Override
    public void readData(ObjectDataInput in) {
      // no state
    }
  }

  /** Takes the block if it is free, expired, or already ours; returns the block's holder afterwards. */
  static final class ClaimBlock implements EntryProcessor<String, String, String> {
    private static final long serialVersionUID = 1L;
    private final String node;
    private final String underlayAddress;
    private final long graceMillis;

    ClaimBlock(String node, String underlayAddress, long graceMillis) {
      this.node = node;
      this.underlayAddress = underlayAddress;
      this.graceMillis = graceMillis;
    }

    @Override
    public String process(Map.Entry<String, String> entry) {
      long now = System.currentTimeMillis();
      String block = entry.getKey();
      if (entry.getValue() == null || isTombstone(entry.getValue())) {
        long epoch = entry.getValue() == null ? 1 : tombstoneEpoch(entry.getValue()) + 1;
        String json = encode(new NodeBlockLease(node, underlayAddress, block, epoch, now));
        entry.setValue(json);
        return json;
      }
      NodeBlockLease current = decode(entry.getValue());
      NodeBlockLease next;
      if (current.node().equals(node)) {
        next = new NodeBlockLease(node, underlayAddress, block, current.epoch(), now);
      } else if (now - current.renewedAtMillis() > graceMillis) {
        next = new NodeBlockLease(node, underlayAddress, block, current.epoch() + 1, now);
      } else {
        return entry.getValue();
      }
      String json = encode(next);
      entry.setValue(json);
      return json;
    }
  }

  /**
   * Renews the lease if the block is still the holder's; puts it back if the entry is gone,
   * and claims it anew (the next epoch) if it was released meanwhile. Another node's lease
   * takes the block from the holder only at the holder's epoch or a later one: an older epoch
   * is a stale copy of the block's past, never a take-over (epochs of a block only grow). Such
   * a copy is what a renewal meets in the moments after a split-brain merge, when the members of
   * the half that merged in already work on the other half's data and their own entries have not
   * been merged in yet; giving the block up then would publish the holder's own lease as released.
   */
  static final class RenewLease implements EntryProcessor<String, String, String> {
    private static final long serialVersionUID = 1L;
    private final String heldJson;

    RenewLease(String heldJson) {
      this.heldJson = heldJson;
    }

    @Override
    public String process(Map.Entry<String, String> entry) {
      NodeBlockLease held = decode(heldJson);
      if (isTombstone(entry.getValue())) {
        // released at our epoch or later: a new claim; released before our claim: a stale tombstone
        held = new NodeBlockLease(held.node(), held.underlayAddress(), held.block(),
            Math.max(held.epoch(), tombstoneEpoch(entry.getValue()) + 1), held.renewedAtMillis());
      } else if (entry.getValue() != null) {
        NodeBlockLease current = decode(entry.getValue());
        if (!current.node().equals(held.node())) {
          if (current.epoch() >= held.epoch()) {
            return entry.getValue();
          }
        } else if (current.epoch() >= held.epoch()) {
          held = current;
        }
      }
      String json = encode(held.renewedAt(System.currentTimeMillis()));
      entry.setValue(json);
      return json;
    }
  }

  /** Removes the lease if it expired (leaving its tombstone); returns it, or null. */
  static final class ReleaseIfExpired implements EntryProcessor<String, String, String> {
    private static final long serialVersionUID = 1L;
    private final long graceMillis;

    ReleaseIfExpired(long graceMillis) {
      this.graceMillis = graceMillis;
    }

    @Override
    public String process(Map.Entry<String, String> entry) {
      if (entry.getValue() == null || isTombstone(entry.getValue())) {
        return null;
      }
      NodeBlockLease current = decode(entry.getValue());
      if (System.currentTimeMillis() - current.renewedAtMillis() <= graceMillis) {
        return null;
      }
      String removed = entry.getValue();
      entry.setValue(tombstone(current));
      return removed;
    }
  }

  /** Removes the lease if {@code node} holds it (leaving its tombstone). */
  static final class ReleaseHeld implements EntryProcessor<String, String, Boolean> {
    private static final long serialVersionUID = 1L;
    private final String node;

    ReleaseHeld(String node) {
      this.node = node;
    }

    @Override
    public Boolean process(Map.Entry<String, String> entry) {
      if (entry.getValue() == null || isTombstone(entry.getValue()) || !decode(entry.getValue()).node().equals(node)) {
        return false;
      }
      entry.setValue(tombstone(decode(entry.getValue())));
      return true;
    }
  }
}

package dev.ipseccni.ipam;

import dev.ipseccni.bus.IpPrefix;
import java.math.BigInteger;

/**
 * The cluster CIDR cut into equal node blocks, e.g. 10.128.0.0/16 into 256 blocks of /24.
 * Inside a block the first address is the network, the second the bridge gateway, and
 * the last the broadcast; pods get the ones in between.
 */
public record NodeBlocks(IpPrefix clusterCidr, int blockPrefixLength) {

  /** Offset of the gateway (the bridge's address) inside every block. */
  public static final long GATEWAY_OFFSET = 1;
  /** First offset handed to a pod: after network and gateway. */
  public static final long FIRST_POD_OFFSET = 2;
  /** Blocks larger than this many addresses are refused: the pool indexes offsets in memory. */
  public static final int MAX_BLOCK_HOST_BITS = 24;
  /** At most this many blocks, so a claim can scan them. */
  public static final int MAX_BLOCK_COUNT_BITS = 20;

  public NodeBlocks {
    if (blockPrefixLength <= clusterCidr.prefixLength()) {
      throw new IllegalArgumentException("block prefix length /" + blockPrefixLength
          + " must be longer than the cluster CIDR's /" + clusterCidr.prefixLength());
    }
    int hostBits = clusterCidr.bits() - blockPrefixLength;
    if (hostBits < 2) {
      throw new IllegalArgumentException("a /" + blockPrefixLength
          + " block has no room for network, gateway, a pod and broadcast");
    }
    if (hostBits > MAX_BLOCK_HOST_BITS) {
      throw new IllegalArgumentException("a /" + blockPrefixLength + " block has 2^" + hostBits
          + " addresses; at most 2^" + MAX_BLOCK_HOST_BITS + " are supported");
    }
    if (blockPrefixLength - clusterCidr.prefixLength() > MAX_BLOCK_COUNT_BITS) {
      throw new IllegalArgumentException(clusterCidr + " cut into /" + blockPrefixLength + " gives 2^"
          + (blockPrefixLength - clusterCidr.prefixLength()) + " blocks; at most 2^" + MAX_BLOCK_COUNT_BITS
          + " are supported");
    }
  }

  public static NodeBlocks of(String clusterCidr, int blockPrefixLength) {
    return new NodeBlocks(IpPrefix.parse(clusterCidr), blockPrefixLength);
  }

  public long blockCount() {
    return 1L << (blockPrefixLength - clusterCidr.prefixLength());
  }

  public IpPrefix block(long index) {
    return clusterCidr.subPrefix(blockPrefixLength, index);
  }

  /** Whether {@code block} is one of this cut's blocks (inside the CIDR, of the block length). */
  public boolean isBlock(IpPrefix block) {
    return block.prefixLength() == blockPrefixLength && clusterCidr.contains(block);
  }

  /** Addresses per block, network and broadcast included. */
  public long blockSize() {
    return 1L << (clusterCidr.bits() - blockPrefixLength);
  }

  /** Last offset handed to a pod (the one before broadcast). */
  public long lastPodOffset() {
    return blockSize() - 2;
  }

  /** How many pods a block holds: all but network, gateway and broadcast. */
  public long podCapacity() {
    return lastPodOffset() - FIRST_POD_OFFSET + 1;
  }

  public static String gateway(IpPrefix block) {
    return block.addressAt(GATEWAY_OFFSET);
  }

  @Override
  public String toString() {
    return clusterCidr + " in /" + blockPrefixLength + " blocks (" + blockCount() + " of "
        + BigInteger.valueOf(blockSize()) + " addresses)";
  }
}

package dev.ipseccni.bus;

import java.math.BigInteger;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * An IPv4 or IPv6 prefix in CIDR notation, e.g. 10.128.1.0/24. The network value is kept
 * as a number so the same math serves both families; addresses inside the prefix are
 * named by their offset from the network address.
 *
 * @param network the network address as an unsigned number, host bits zero
 * @param prefixLength the number of network bits
 * @param bits 32 for IPv4, 128 for IPv6
 */
public record IpPrefix(BigInteger network, int prefixLength, int bits) {

  public IpPrefix {
    if (bits != 32 && bits != 128) {
      throw new IllegalArgumentException("address family must be 32 or 128 bits, not " + bits);
    }
    if (prefixLength < 0 || prefixLength > bits) {
      throw new IllegalArgumentException("prefix length " + prefixLength + " outside 0.." + bits);
    }
    if (network.signum() < 0 || network.bitLength() > bits) {
      throw new IllegalArgumentException("network value out of range");
    }
    if (!network.and(hostMask(prefixLength, bits)).equals(BigInteger.ZERO)) {
      throw new IllegalArgumentException(
          format(network, bits) + "/" + prefixLength + " has host bits set (not a network address)");
    }
  }

  /** Parses "10.128.0.0/16" or "fd00::/48"; rejects a prefix whose host bits are set. */
  public static IpPrefix parse(String cidr) {
    int slash = cidr.indexOf('/');
    if (slash < 0) {
      throw new IllegalArgumentException("'" + cidr + "' is not in CIDR notation (address/length)");
    }
    BigInteger value;
    int bits;
    byte[] raw = literalBytes(cidr.substring(0, slash));
    bits = raw.length * 8;
    value = new BigInteger(1, raw);
    int length;
    try {
      length = Integer.parseInt(cidr.substring(slash + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("'" + cidr + "' has no numeric prefix length");
    }
    return new IpPrefix(value, length, bits);
  }

  /** Parses a single address literal (no host-name lookup) to its number. */
  public static BigInteger parseAddress(String address) {
    return new BigInteger(1, literalBytes(address));
  }

  private static byte[] literalBytes(String literal) {
    // InetAddress resolves names; accept only literals so a typo never triggers DNS.
    boolean v4 = literal.matches("\\d{1,3}(\\.\\d{1,3}){3}");
    boolean v6 = literal.contains(":") && literal.matches("[0-9a-fA-F:.]+");
    if (!v4 && !v6) {
      throw new IllegalArgumentException("'" + literal + "' is not an IP address literal");
    }
    if (v4) {
      // InetAddress sends a dotted quad it cannot parse (999.1.1.1) to the resolver: parse it here instead.
      String[] octets = literal.split("\\.");
      byte[] raw = new byte[4];
      for (int i = 0; i < 4; i++) {
        int octet = Integer.parseInt(octets[i]);
        // 010 is 10 to some parsers and 8 (octal) to others; Go's, which the reference plugins use, refuses it.
        if (octet > 255 || (octets[i].length() > 1 && octets[i].startsWith("0"))) {
          throw new IllegalArgumentException("'" + literal + "' is not an IP address literal");
        }
        raw[i] = (byte) octet;
      }
      return raw;
    }
    try {
      return InetAddress.getByName(literal).getAddress();
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("'" + literal + "' is not an IP address literal");
    }
  }

  public boolean isIpv4() {
    return bits == 32;
  }

  /** Number of addresses in the prefix. */
  public BigInteger size() {
    return BigInteger.ONE.shiftLeft(bits - prefixLength);
  }

  /** The address at {@code offset} from the network address, as text (e.g. 10.128.1.2). */
  public String addressAt(long offset) {
    if (offset < 0 || BigInteger.valueOf(offset).compareTo(size()) >= 0) {
      throw new IllegalArgumentException("offset " + offset + " outside " + this);
    }
    return format(network.add(BigInteger.valueOf(offset)), bits);
  }

  /** The offset of an address inside this prefix; fails for an address outside it. */
  public long offsetOf(String address) {
    BigInteger value = parseAddress(address);
    BigInteger offset = value.subtract(network);
    if (offset.signum() < 0 || offset.compareTo(size()) >= 0 || literalBytes(address).length * 8 != bits) {
      throw new IllegalArgumentException(address + " is not inside " + this);
    }
    return offset.longValueExact();
  }

  /** Whether {@code other} lies entirely inside this prefix. */
  public boolean contains(IpPrefix other) {
    return other.bits == bits && other.prefixLength >= prefixLength
        && other.network.andNot(hostMask(prefixLength, bits)).equals(network);
  }

  /** The {@code index}-th sub-prefix of the given length, counting from this prefix's network address. */
  public IpPrefix subPrefix(int length, long index) {
    if (length < prefixLength || length > bits) {
      throw new IllegalArgumentException("/" + length + " is not a sub-prefix length of " + this);
    }
    BigInteger count = BigInteger.ONE.shiftLeft(length - prefixLength);
    if (index < 0 || BigInteger.valueOf(index).compareTo(count) >= 0) {
      throw new IllegalArgumentException("index " + index + " outside the " + count + " /" + length + " of " + this);
    }
    return new IpPrefix(network.add(BigInteger.valueOf(index).shiftLeft(bits - length)), length, bits);
  }

  /** Position of a sub-prefix among this prefix's sub-prefixes of its length. */
  public long indexOf(IpPrefix sub) {
    if (!contains(sub)) {
      throw new IllegalArgumentException(sub + " is not inside " + this);
    }
    return sub.network.subtract(network).shiftRight(bits - sub.prefixLength).longValueExact();
  }

  @Override
  public String toString() {
    return format(network, bits) + "/" + prefixLength;
  }

  private static BigInteger hostMask(int prefixLength, int bits) {
    return BigInteger.ONE.shiftLeft(bits - prefixLength).subtract(BigInteger.ONE);
  }

  private static String format(BigInteger value, int bits) {
    byte[] raw = value.toByteArray();
    byte[] fixed = new byte[bits / 8];
    int copy = Math.min(raw.length, fixed.length);
    System.arraycopy(raw, raw.length - copy, fixed, fixed.length - copy, copy);
    try {
      String text = InetAddress.getByAddress(fixed).getHostAddress();
      return bits == 128 ? compressV6(text) : text;
    } catch (UnknownHostException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Java prints IPv6 uncompressed (fd00:0:0:0:...); use the usual shortest form. */
  private static String compressV6(String full) {
    String[] groups = full.split(":");
    int bestStart = -1;
    int bestLength = 1;
    for (int i = 0; i < groups.length; ) {
      if (!groups[i].equals("0")) {
        i++;
        continue;
      }
      int j = i;
      while (j < groups.length && groups[j].equals("0")) {
        j++;
      }
      if (j - i > bestLength) {
        bestStart = i;
        bestLength = j - i;
      }
      i = j;
    }
    if (bestStart < 0) {
      return full;
    }
    String head = String.join(":", java.util.Arrays.copyOfRange(groups, 0, bestStart));
    String tail = String.join(":", java.util.Arrays.copyOfRange(groups, bestStart + bestLength, groups.length));
    return head + "::" + tail;
  }
}

package dev.ipseccni.agent;

import java.math.BigInteger;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Optional;
import java.util.regex.Pattern;

/** An IP network in CIDR notation, as far as config validation needs it (IPv4 and IPv6). */
record Prefix(BigInteger network, int length, int bits) {

  private static final Pattern IPV4 = Pattern.compile("(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})");
  private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]+");

  /** Parses an address literal without ever asking DNS. */
  static Optional<InetAddress> parseAddress(String literal) {
    boolean v4 = IPV4.matcher(literal).matches();
    if (v4) {
      for (String octet : literal.split("\\.")) {
        if (Integer.parseInt(octet) > 255) {
          return Optional.empty();
        }
      }
    } else if (!literal.contains(":") || !IPV6.matcher(literal).matches()) {
      return Optional.empty();
    }
    try {
      return Optional.of(InetAddress.getByName(literal));
    } catch (UnknownHostException e) {
      return Optional.empty();
    }
  }

  /** Parses "a.b.c.d/n"; host bits must be zero. */
  static Optional<Prefix> parse(String cidr) {
    int slash = cidr.indexOf('/');
    if (slash < 0) {
      return Optional.empty();
    }
    Optional<InetAddress> address = parseAddress(cidr.substring(0, slash));
    int length;
    try {
      length = Integer.parseInt(cidr.substring(slash + 1));
    } catch (NumberFormatException e) {
      return Optional.empty();
    }
    if (address.isEmpty()) {
      return Optional.empty();
    }
    byte[] bytes = address.get().getAddress();
    int bits = bytes.length * 8;
    if (length < 0 || length > bits) {
      return Optional.empty();
    }
    BigInteger value = new BigInteger(1, bytes);
    BigInteger hostMask = BigInteger.ONE.shiftLeft(bits - length).subtract(BigInteger.ONE);
    if (!value.and(hostMask).equals(BigInteger.ZERO)) {
      return Optional.empty();
    }
    return Optional.of(new Prefix(value, length, bits));
  }

  boolean contains(Prefix other) {
    return other.bits == bits && other.length >= length
        && other.network.shiftRight(bits - length).equals(network.shiftRight(bits - length));
  }
}

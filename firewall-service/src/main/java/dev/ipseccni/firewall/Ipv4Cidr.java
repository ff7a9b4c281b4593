package dev.ipseccni.firewall;

import java.util.Optional;

/** An IPv4 network in CIDR notation, normalised (host bits cleared), as iptables prints it. */
public record Ipv4Cidr(int network, int prefixLength) {

  public Ipv4Cidr {
    if (prefixLength < 0 || prefixLength > 32) {
      throw new IllegalArgumentException("prefix length " + prefixLength + " is not within 0..32");
    }
    network = network & mask(prefixLength);
  }

  /** Parses {@code a.b.c.d/n}; empty when the text is not such a network. */
  public static Optional<Ipv4Cidr> parse(String text) {
    int slash = text.indexOf('/');
    if (slash < 0) {
      return Optional.empty();
    }
    String[] octets = text.substring(0, slash).split("\\.", -1);
    if (octets.length != 4) {
      return Optional.empty();
    }
    try {
      int address = 0;
      for (String octet : octets) {
        int value = Integer.parseInt(octet);
        if (value < 0 || value > 255 || octet.isEmpty() || octet.startsWith("+")) {
          return Optional.empty();
        }
        address = (address << 8) | value;
      }
      int prefix = Integer.parseInt(text.substring(slash + 1));
      if (prefix < 0 || prefix > 32) {
        return Optional.empty();
      }
      return Optional.of(new Ipv4Cidr(address, prefix));
    } catch (NumberFormatException e) {
      return Optional.empty();
    }
  }

  public boolean contains(Ipv4Cidr other) {
    return other.prefixLength >= prefixLength && (other.network & mask(prefixLength)) == network;
  }

  private static int mask(int prefixLength) {
    return prefixLength == 0 ? 0 : -1 << (32 - prefixLength);
  }

  /** The first host address: the block's gateway (cni0's address, as IPAM hands it out). */
  public String firstHost() {
    int a = network + 1;
    return (a >>> 24) + "." + ((a >>> 16) & 255) + "." + ((a >>> 8) & 255) + "." + (a & 255);
  }

  @Override
  public String toString() {
    return (network >>> 24) + "." + ((network >>> 16) & 255) + "." + ((network >>> 8) & 255) + "." + (network & 255)
        + "/" + prefixLength;
  }
}

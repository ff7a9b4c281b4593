package dev.ipseccni.cni;

import dev.ipseccni.bus.IpPrefix;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The one pod address a runtime asked for on ADD, from any of the three places runtimes put
 * it (the same three the reference host-local IPAM reads):
 * <ul>
 *   <li>{@code CNI_ARGS} {@code IP=10.128.1.9} — podman {@code --ip}; like the reference
 *       {@code static} plugin we accept a comma-separated list and a prefix length;</li>
 *   <li>{@code runtimeConfig.ips} — the {@code ips} capability our conflist declares;</li>
 *   <li>{@code args.cni.ips} — the CNI conventions' per-network-config arguments.</li>
 * </ul>
 * Each entry may carry a prefix length ({@code 10.128.1.9/24}); only the address counts,
 * as in host-local: the pod's prefix is always its node block's. A pod has one address on
 * this network, so all entries together must name one address (repeats are fine).
 *
 * <p>A malformed value is refused even under {@code IgnoreUnknown=1}, as the reference
 * plugins do for keys they know: 4 when it came in CNI_ARGS, 7 when it came in the config.
 */
public final class RequestedAddress {
  private RequestedAddress() {}

  private record Asked(String address, String source) {}

  /** The address requested for this ADD (bare, no prefix length), or empty when the runtime asked for none. */
  public static Optional<String> of(CniArgs args, NetworkConfig config) {
    List<Asked> asked = new ArrayList<>();
    String ip = args.values().getOrDefault("IP", "");
    for (String entry : ip.split(",")) {
      if (!entry.isBlank()) {
        asked.add(new Asked(bare(entry.strip(), CniError.INVALID_ENVIRONMENT, "CNI_ARGS IP"), "CNI_ARGS IP"));
      }
    }
    JsonObject raw = config.raw();
    JsonObject runtimeConfig = raw.getValue("runtimeConfig") instanceof JsonObject rc ? rc : new JsonObject();
    fromList(runtimeConfig.getValue("ips"), "runtimeConfig.ips", asked);
    if (raw.getValue("args") instanceof JsonObject a && a.getValue("cni") instanceof JsonObject cni) {
      fromList(cni.getValue("ips"), "args.cni.ips", asked);
    }
    if (asked.isEmpty()) {
      return Optional.empty();
    }
    Asked first = asked.get(0);
    BigInteger value = IpPrefix.parseAddress(first.address());
    for (Asked other : asked) {
      if (!IpPrefix.parseAddress(other.address()).equals(value) || family(other) != family(first)) {
        boolean envOnly = asked.stream().allMatch(x -> x.source().equals("CNI_ARGS IP"));
        throw new CniError(envOnly ? CniError.INVALID_ENVIRONMENT : CniError.INVALID_NETWORK_CONFIG,
            "more than one pod address requested (" + describe(asked) + "): a pod gets one address on network "
                + config.name());
      }
    }
    return Optional.of(first.address());
  }

  private static void fromList(Object value, String source, List<Asked> asked) {
    if (value == null) {
      return;
    }
    if (!(value instanceof JsonArray list)) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, source + " is not a list of addresses: " + value);
    }
    for (Object entry : list) {
      if (!(entry instanceof String s)) {
        throw new CniError(CniError.INVALID_NETWORK_CONFIG, source + " entry " + entry + " is not a string");
      }
      asked.add(new Asked(bare(s.strip(), CniError.INVALID_NETWORK_CONFIG, source), source));
    }
  }

  /** "10.128.1.9/24" → "10.128.1.9", refusing what is not an address (with an optional numeric prefix length). */
  private static String bare(String entry, int code, String source) {
    int slash = entry.indexOf('/');
    String address = slash < 0 ? entry : entry.substring(0, slash);
    try {
      IpPrefix.parseAddress(address);
      if (slash >= 0) {
        int length = Integer.parseInt(entry.substring(slash + 1));
        int bits = address.contains(":") ? 128 : 32;
        if (length < 0 || length > bits) {
          throw new IllegalArgumentException("prefix length " + length + " outside 0.." + bits);
        }
      }
    } catch (IllegalArgumentException e) {
      throw new CniError(code, source + " '" + CniEnvironment.printable(entry)
          + "' is not an IP address (a.b.c.d, optionally with /prefix-length)");
    }
    return address;
  }

  private static int family(Asked asked) {
    return asked.address().contains(":") ? 6 : 4;
  }

  private static String describe(List<Asked> asked) {
    return asked.stream().map(a -> a.source() + " " + a.address())
        .collect(java.util.stream.Collectors.joining(", "));
  }
}

package dev.ipseccni.tunnel;

import dev.ipseccni.tunnel.ProposalAlgorithms.Algorithm;
import dev.ipseccni.tunnel.ProposalAlgorithms.Kind;
import dev.ipseccni.tunnel.ProposalAlgorithms.Proposal;
import dev.ipseccni.tunnel.vici.ViciMessage;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The algorithms a running charon can do (its {@code get-algorithms} answer: algorithm name →
 * the plugin providing it; key sizes are not listed) and the plugins it loaded, held against
 * the proposals the tunnel service configures. charon loads a connection whose algorithms it
 * lacks without a word and fails only in the first IKE exchange ("ENCRYPTION_ALGORITHM
 * AES_GCM_16 (key size 256) not supported!"), so the service asks first.
 */
public record CharonAlgorithms(Map<Kind, Set<String>> available, boolean knowsKdf, Set<String> kdf,
                               List<String> plugins) {

  /** What is missing, in charon's names with key size, and the sentence an operator acts on; capable when empty. */
  public record Verdict(List<String> missing, String problem) {
    public boolean capable() {
      return missing.isEmpty();
    }
  }

  /**
   * @param algorithms charon's answer to get-algorithms
   * @param stats charon's answer to stats (its {@code plugins} list)
   */
  public static CharonAlgorithms of(ViciMessage algorithms, ViciMessage stats) {
    Map<Kind, Set<String>> available = new EnumMap<>(Kind.class);
    for (Kind kind : Kind.values()) {
      available.put(kind, algorithms.section(kind.section).map(s -> Set.copyOf(s.entries().keySet())).orElse(Set.of()));
    }
    // charon 5.9 derives IKE keys through a KDF of its own (kdf or openssl plugin); older ones have no such section
    var kdf = algorithms.section("kdf");
    return new CharonAlgorithms(available, kdf.isPresent(),
        kdf.map(s -> Set.copyOf(s.entries().keySet())).orElse(Set.of()), stats.list("plugins"));
  }

  /**
   * Whether charon can negotiate at least one of the IKE proposals and one of the ESP ones.
   *
   * @param espInCharon the ESP algorithms run in charon (libipsec); with the kernel datapath
   *     only the DH group of an ESP proposal is charon's work
   */
  public Verdict check(List<Proposal> ike, List<Proposal> esp, boolean espInCharon) {
    Set<String> missing = new LinkedHashSet<>();
    List<String> reasons = new ArrayList<>();
    List<String> ikeMissing = firstUsable(ike, Set.of(Kind.values()));
    if (!ikeMissing.isEmpty()) {
      missing.addAll(ikeMissing);
      reasons.add("IKE proposal " + ike.stream().map(Proposal::text).collect(Collectors.joining(",")));
    } else if (knowsKdf && !kdf.contains("KDF_PRF_PLUS")) {
      missing.add("KDF_PRF_PLUS");
      reasons.add("IKE key derivation");
    }
    List<String> espMissing = firstUsable(esp, espInCharon ? Set.of(Kind.values()) : Set.of(Kind.DH));
    if (!espMissing.isEmpty()) {
      missing.addAll(espMissing);
      reasons.add("ESP proposal " + esp.stream().map(Proposal::text).collect(Collectors.joining(",")));
    }
    if (missing.isEmpty()) {
      return new Verdict(List.of(), "");
    }
    Set<String> remedies = new LinkedHashSet<>();
    for (String name : missing) {
      remedies.add(remedy(name));
    }
    String problem = "charon cannot do " + String.join(", ", missing) + " (" + String.join("; ", reasons) + "): "
        + String.join("; ", remedies) + " (charon loaded: " + String.join(" ", plugins) + ")";
    return new Verdict(List.copyOf(missing), problem);
  }

  /** Empty when a proposal of the list can be done; else what the first one lacks (one entry per kind, alternatives joined by "or"). */
  private List<String> firstUsable(List<Proposal> proposals, Set<Kind> checked) {
    List<String> firstMissing = null;
    for (Proposal p : proposals) {
      if (p.anything()) {
        return List.of();
      }
      List<String> lacking = new ArrayList<>();
      p.choices().forEach((kind, choices) -> {
        if (checked.contains(kind) && choices.stream().noneMatch(a -> available.get(kind).contains(a.name()))) {
          lacking.add(choices.stream().map(Algorithm::display).collect(Collectors.joining(" or ")));
        }
      });
      if (lacking.isEmpty()) {
        return List.of();
      }
      if (firstMissing == null) {
        firstMissing = lacking;
      }
    }
    return firstMissing == null ? List.of() : firstMissing;
  }

  /** Which plugin provides it, and the Debian package that holds the plugin. */
  static String remedy(String algorithm) {
    String name = algorithm.split(" or ")[0];
    if (name.startsWith("AES_GCM")) {
      return "load the openssl or gcm plugin (Debian: libstrongswan-standard-plugins)";
    }
    if (name.startsWith("AES_CCM")) {
      return "load the openssl or ccm plugin (Debian: libstrongswan-standard-plugins or libstrongswan-extra-plugins)";
    }
    if (name.startsWith("CHACHA20")) {
      return "load the openssl or chapoly plugin (Debian: libstrongswan-standard-plugins or libstrongswan-extra-plugins)";
    }
    if (name.startsWith("AES_CBC")) {
      return "load the aes or openssl plugin (Debian: libstrongswan, libstrongswan-standard-plugins)";
    }
    if (name.startsWith("AES_CTR") || name.startsWith("CAMELLIA") || name.startsWith("3DES")) {
      return "load the openssl plugin (Debian: libstrongswan-standard-plugins)";
    }
    if (name.startsWith("HMAC_") || name.startsWith("PRF_HMAC")) {
      return "load the hmac plugin with sha1/sha2, or openssl (Debian: libstrongswan, libstrongswan-standard-plugins)";
    }
    if (name.contains("XCBC") || name.contains("CMAC")) {
      return "load the openssl, xcbc or cmac plugin (Debian: libstrongswan-standard-plugins or libstrongswan-extra-plugins)";
    }
    if (name.equals("CURVE_25519")) {
      return "load the openssl or curve25519 plugin (Debian: libstrongswan-standard-plugins or libstrongswan-extra-plugins)";
    }
    if (name.startsWith("MODP")) {
      return "load the gmp or openssl plugin (Debian: libstrongswan, libstrongswan-standard-plugins)";
    }
    if (name.startsWith("KDF")) {
      return "load the kdf or openssl plugin (Debian: libstrongswan, libstrongswan-standard-plugins)";
    }
    // ECP_*, CURVE_448 and the rest: openssl is where Debian's charon has them
    return "load the openssl plugin (Debian: libstrongswan-standard-plugins)";
  }
}

package dev.ipseccni.tunnel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a strongSwan proposal string asks of charon's crypto: each keyword of
 * {@code aes256gcm16-prfsha256-x25519,aes256-sha256-modp3072} read as the algorithm charon's
 * {@code get-algorithms} names (AES_GCM_16, PRF_HMAC_SHA2_256, CURVE_25519, …) with its key
 * size. Proposals are alternatives (comma); within one, algorithms of the same kind are too.
 * A keyword outside the set below is refused with its name, so a typo fails at start, not
 * in the first IKE exchange.
 */
public final class ProposalAlgorithms {
  private ProposalAlgorithms() {}

  /** The sections of charon's get-algorithms answer an algorithm can be found in. */
  public enum Kind {
    ENCRYPTION("encryption"), AEAD("aead"), INTEGRITY("integrity"), PRF("prf"), DH("dh");

    /** The section name in get-algorithms. */
    public final String section;

    Kind(String section) {
      this.section = section;
    }
  }

  /**
   * One algorithm as charon names it.
   *
   * @param keySize in bits, 0 where the name says it all
   */
  public record Algorithm(Kind kind, String name, int keySize) {
    /** As charon prints it in "selected proposal: …": AES_GCM_16_256, CURVE_25519. */
    public String display() {
      return keySize == 0 ? name : name + "_" + keySize;
    }
  }

  /**
   * One proposal: for each kind it names, the algorithms of which any one will do.
   * {@code anything} is charon's {@code default} keyword: whatever charon has.
   */
  public record Proposal(String text, Map<Kind, List<Algorithm>> choices, boolean anything) {}

  private static final Pattern AES = Pattern.compile("aes(128|192|256)?(ctr|gcm(8|12|16|64|96|128)?|ccm(8|12|16|64|96|128)?)?");
  private static final Pattern CAMELLIA = Pattern.compile("camellia(128|192|256)?");
  private static final Pattern MODP = Pattern.compile("modp(768|1024|1536|2048|3072|4096|6144|8192)");
  private static final Pattern ECP = Pattern.compile("ecp(192|224|256|384|521)");
  private static final Pattern ECP_BP = Pattern.compile("ecp(224|256|384|512)bp");

  private static final Map<String, String[]> INTEGRITY = Map.ofEntries(
      Map.entry("md5", new String[] {"HMAC_MD5_96", "PRF_HMAC_MD5"}),
      Map.entry("md5_128", new String[] {"HMAC_MD5_128", "PRF_HMAC_MD5"}),
      Map.entry("sha1", new String[] {"HMAC_SHA1_96", "PRF_HMAC_SHA1"}),
      Map.entry("sha", new String[] {"HMAC_SHA1_96", "PRF_HMAC_SHA1"}),
      Map.entry("sha1_160", new String[] {"HMAC_SHA1_160", "PRF_HMAC_SHA1"}),
      Map.entry("sha256", new String[] {"HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256"}),
      Map.entry("sha2_256", new String[] {"HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256"}),
      Map.entry("sha256_96", new String[] {"HMAC_SHA2_256_96", "PRF_HMAC_SHA2_256"}),
      Map.entry("sha384", new String[] {"HMAC_SHA2_384_192", "PRF_HMAC_SHA2_384"}),
      Map.entry("sha2_384", new String[] {"HMAC_SHA2_384_192", "PRF_HMAC_SHA2_384"}),
      Map.entry("sha512", new String[] {"HMAC_SHA2_512_256", "PRF_HMAC_SHA2_512"}),
      Map.entry("sha2_512", new String[] {"HMAC_SHA2_512_256", "PRF_HMAC_SHA2_512"}),
      Map.entry("aesxcbc", new String[] {"AES_XCBC_96", "PRF_AES128_XCBC"}),
      Map.entry("aescmac", new String[] {"AES_CMAC_96", "PRF_AES128_CMAC"}));

  private static final Map<String, String> PRF = Map.of(
      "prfmd5", "PRF_HMAC_MD5", "prfsha1", "PRF_HMAC_SHA1", "prfsha256", "PRF_HMAC_SHA2_256",
      "prfsha384", "PRF_HMAC_SHA2_384", "prfsha512", "PRF_HMAC_SHA2_512", "prfaesxcbc", "PRF_AES128_XCBC",
      "prfaescmac", "PRF_AES128_CMAC");

  /** The proposals of an IKE SA: without an explicit PRF, a non-AEAD one derives it from its integrity algorithm. */
  public static List<Proposal> ike(String proposals) {
    return parse(proposals, true);
  }

  /** The proposals of a CHILD SA (ESP); a DH group here is for PFS when rekeying. */
  public static List<Proposal> esp(String proposals) {
    return parse(proposals, false);
  }

  private static List<Proposal> parse(String proposals, boolean ike) {
    List<Proposal> out = new ArrayList<>();
    for (String text : proposals.split(",")) {
      String p = text.trim().toLowerCase(Locale.ROOT);
      if (p.equals("default")) {
        out.add(new Proposal(p, Map.of(), true));
        continue;
      }
      Map<Kind, List<Algorithm>> choices = new LinkedHashMap<>();
      List<Algorithm> derivedPrf = new ArrayList<>();
      for (String keyword : p.split("-")) {
        if (keyword.equals("esn") || keyword.equals("noesn")) {
          continue;
        }
        Algorithm a = keyword(keyword, ike, derivedPrf);
        choices.computeIfAbsent(a.kind(), k -> new ArrayList<>()).add(a);
      }
      if (choices.containsKey(Kind.AEAD) && choices.containsKey(Kind.ENCRYPTION)) {
        throw new IllegalArgumentException("proposal '" + text + "' mixes an AEAD with a plain cipher: strongSwan"
            + " wants them in separate proposals");
      }
      if (!choices.containsKey(Kind.AEAD) && !choices.containsKey(Kind.ENCRYPTION)) {
        throw new IllegalArgumentException("proposal '" + text + "' names no encryption algorithm");
      }
      if (ike && !choices.containsKey(Kind.PRF) && !derivedPrf.isEmpty() && !choices.containsKey(Kind.AEAD)) {
        choices.put(Kind.PRF, derivedPrf);
      }
      if (ike && choices.containsKey(Kind.AEAD) && !choices.containsKey(Kind.PRF)) {
        throw new IllegalArgumentException("IKE proposal '" + text + "' has an AEAD cipher but no PRF (add e.g. prfsha256)");
      }
      if (ike && !choices.containsKey(Kind.DH)) {
        throw new IllegalArgumentException("IKE proposal '" + text + "' names no key exchange (DH group, e.g. x25519)");
      }
      Map<Kind, List<Algorithm>> frozen = new LinkedHashMap<>();
      choices.forEach((k, v) -> frozen.put(k, List.copyOf(v)));
      out.add(new Proposal(p, java.util.Collections.unmodifiableMap(frozen), false));
    }
    return List.copyOf(out);
  }

  private static Algorithm keyword(String keyword, boolean ike, List<Algorithm> derivedPrf) {
    Matcher m = AES.matcher(keyword);
    if (m.matches()) {
      int size = m.group(1) == null ? 128 : Integer.parseInt(m.group(1));
      String mode = m.group(2);
      if (mode == null) {
        return new Algorithm(Kind.ENCRYPTION, "AES_CBC", size);
      }
      if (mode.equals("ctr")) {
        return new Algorithm(Kind.ENCRYPTION, "AES_CTR", size);
      }
      String icv = m.group(3) != null ? m.group(3) : m.group(4);
      return new Algorithm(Kind.AEAD, (mode.startsWith("gcm") ? "AES_GCM_" : "AES_CCM_") + icvBytes(icv), size);
    }
    m = CAMELLIA.matcher(keyword);
    if (m.matches()) {
      return new Algorithm(Kind.ENCRYPTION, "CAMELLIA_CBC", m.group(1) == null ? 128 : Integer.parseInt(m.group(1)));
    }
    if (keyword.equals("chacha20poly1305")) {
      return new Algorithm(Kind.AEAD, "CHACHA20_POLY1305", 256);
    }
    if (keyword.equals("3des")) {
      return new Algorithm(Kind.ENCRYPTION, "3DES_CBC", 0);
    }
    if (keyword.equals("null")) {
      return new Algorithm(Kind.ENCRYPTION, "NULL", 0);
    }
    String[] integrity = INTEGRITY.get(keyword);
    if (integrity != null) {
      derivedPrf.add(new Algorithm(Kind.PRF, integrity[1], 0));
      return new Algorithm(Kind.INTEGRITY, integrity[0], 0);
    }
    String prf = PRF.get(keyword);
    if (prf != null) {
      if (!ike) {
        throw new IllegalArgumentException("'" + keyword + "' is a PRF: it belongs in an IKE proposal, not in ESP");
      }
      return new Algorithm(Kind.PRF, prf, 0);
    }
    if (keyword.equals("x25519") || keyword.equals("curve25519")) {
      return new Algorithm(Kind.DH, "CURVE_25519", 0);
    }
    if (keyword.equals("x448") || keyword.equals("curve448")) {
      return new Algorithm(Kind.DH, "CURVE_448", 0);
    }
    m = MODP.matcher(keyword);
    if (m.matches()) {
      return new Algorithm(Kind.DH, "MODP_" + m.group(1), 0);
    }
    if (keyword.equals("modp1024s160") || keyword.equals("modp2048s224") || keyword.equals("modp2048s256")) {
      return new Algorithm(Kind.DH, "MODP_" + keyword.substring(4, 8) + "_" + keyword.substring(9), 0);
    }
    m = ECP.matcher(keyword);
    if (m.matches()) {
      return new Algorithm(Kind.DH, "ECP_" + m.group(1), 0);
    }
    m = ECP_BP.matcher(keyword);
    if (m.matches()) {
      return new Algorithm(Kind.DH, "ECP_" + m.group(1) + "_BP", 0);
    }
    throw new IllegalArgumentException("'" + keyword + "' is not a proposal keyword this agent knows (AES"
        + " aes128..aes256[ctr|gcm8..16|ccm8..16], chacha20poly1305, camellia, 3des, null; md5 sha1 sha256 sha384"
        + " sha512 aesxcbc aescmac; prfsha256 …; modpN, ecpN, ecpNbp, x25519, x448; esn noesn; default)");
  }

  /** gcm16 and gcm128 both mean a 16-byte ICV; so does a bare gcm. */
  private static int icvBytes(String icv) {
    if (icv == null) {
      return 16;
    }
    int n = Integer.parseInt(icv);
    return n > 16 ? n / 8 : n;
  }
}

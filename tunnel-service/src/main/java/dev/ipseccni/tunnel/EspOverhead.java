package dev.ipseccni.tunnel;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What ESP in tunnel mode adds around an inner IPv4 packet (RFC 4303), for one CHILD SA
 * proposal and encapsulation:
 * <pre>
 *   outer IPv4 20 | UDP 8 (NAT-T, libipsec) | SPI 4 + sequence 4 | IV | inner packet, padding,
 *   pad length 1, next header 1 (together a multiple of the cipher's block, at least 4) | ICV
 * </pre>
 * The padding makes the size depend on the inner packet, so the largest inner packet that fits a
 * link MTU is computed, not a fixed overhead subtracted.
 *
 * @param ivBytes initialisation vector (8 for GCM, CCM, ChaCha20-Poly1305 and CTR; 16 for CBC)
 * @param icvBytes integrity check value (16 for GCM-16, 12 for GCM-12, 12 for HMAC-SHA1-96, ...)
 * @param blockBytes what the encrypted part is padded to (4 for stream-like modes, 16 for AES-CBC)
 * @param udp UDP-encapsulated (NAT traversal; always with libipsec)
 * @param proposal the proposal this was derived from, for messages
 */
public record EspOverhead(int ivBytes, int icvBytes, int blockBytes, boolean udp, String proposal) {
  static final int OUTER_IPV4 = 20;
  static final int UDP = 8;
  static final int ESP_HEADER = 8;
  static final int ESP_TRAILER = 2;

  private static final Pattern AEAD = Pattern.compile("aes(128|192|256)?(gcm|ccm)(8|12|16|64|96|128)?");
  private static final Pattern CBC = Pattern.compile("aes(128|192|256)?(cbc)?");
  private static final Pattern CTR = Pattern.compile("aes(128|192|256)?ctr");

  /** Bytes ESP adds to an inner packet of {@code inner} bytes. */
  public int around(int inner) {
    int encrypted = roundUp(inner + ESP_TRAILER, blockBytes);
    return OUTER_IPV4 + (udp ? UDP : 0) + ESP_HEADER + ivBytes + (encrypted - inner) + icvBytes;
  }

  /** The largest inner packet whose ESP packet fits {@code linkMtu}. */
  public int largestInner(int linkMtu) {
    int room = linkMtu - OUTER_IPV4 - (udp ? UDP : 0) - ESP_HEADER - ivBytes - icvBytes;
    return room / blockBytes * blockBytes - ESP_TRAILER;
  }

  private static int roundUp(int n, int to) {
    return (n + to - 1) / to * to;
  }

  /**
   * The overhead of each proposal of a strongSwan ESP proposal list ({@code aes256gcm16-x25519,
   * aes128-sha256}), the one that leaves the smallest inner packet first: charon may agree on any.
   *
   * @throws IllegalArgumentException for an algorithm whose sizes are not known here
   */
  public static List<EspOverhead> of(String espProposals, boolean udp) {
    List<EspOverhead> out = new ArrayList<>();
    for (String proposal : espProposals.split(",")) {
      out.add(ofOne(proposal.trim(), udp));
    }
    out.sort((a, b) -> Integer.compare(a.largestInner(9000), b.largestInner(9000)));
    return List.copyOf(out);
  }

  /** The proposal of the list that leaves the smallest inner packet. */
  public static EspOverhead worstOf(String espProposals, boolean udp) {
    return of(espProposals, udp).get(0);
  }

  private static EspOverhead ofOne(String proposal, boolean udp) {
    Integer iv = null;
    Integer block = null;
    Integer icv = null;
    boolean aead = false;
    for (String token : proposal.split("-")) {
      Matcher m;
      if ((m = AEAD.matcher(token)).matches()) {
        iv = 8;
        block = 4;
        String bits = m.group(3) == null ? "16" : m.group(3);
        icv = switch (bits) {
          case "8", "64" -> 8;
          case "12", "96" -> 12;
          default -> 16;
        };
        aead = true;
      } else if (token.equals("chacha20poly1305")) {
        iv = 8;
        block = 4;
        icv = 16;
        aead = true;
      } else if (CTR.matcher(token).matches()) {
        iv = 8;
        block = 4;
      } else if (CBC.matcher(token).matches()) {
        iv = 16;
        block = 16;
      } else if (token.equals("3des")) {
        iv = 8;
        block = 8;
      } else if (!aead && integrity(token) > 0) {
        icv = icv == null ? integrity(token) : Math.max(icv, integrity(token));
      }
      // DH groups, esn/noesn and PRFs do not change the packet
    }
    if (iv == null) {
      throw new IllegalArgumentException("ESP proposal '" + proposal + "': no encryption algorithm whose sizes are known"
          + " (aesNNNgcmNN, aesNNNccmNN, chacha20poly1305, aesNNNctr, aesNNN, 3des)");
    }
    if (icv == null) {
      throw new IllegalArgumentException("ESP proposal '" + proposal + "': no integrity algorithm (sha1, sha256, sha384,"
          + " sha512, aesxcbc, md5) for a non-AEAD cipher");
    }
    return new EspOverhead(iv, icv, block, udp, proposal);
  }

  /** ICV length of an integrity algorithm (the truncated HMAC of RFC 4868 / 2404), 0 if it is none. */
  private static int integrity(String token) {
    return switch (token) {
      case "sha1", "sha", "md5", "aesxcbc", "aescmac" -> 12;
      case "sha256", "sha2_256" -> 16;
      case "sha384", "sha2_384" -> 24;
      case "sha512", "sha2_512" -> 32;
      default -> 0;
    };
  }
}

package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.tunnel.ProposalAlgorithms.Algorithm;
import dev.ipseccni.tunnel.ProposalAlgorithms.Kind;
import dev.ipseccni.tunnel.vici.ViciMessage;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Proposal strings read as charon's algorithm names, held against get-algorithms answers as
 * charon 5.9.8 gave them here (with and without the gcm and openssl plugins; see
 * TunnelFailureReasonsTest for the same against a running charon).
 */
class ProposalAlgorithmsTest {

  @Test
  void defaultProposalsReadAsCharonNamesThem() {
    var ike = ProposalAlgorithms.ike(Proposals.DEFAULT.ike()).get(0);
    assertEquals(List.of(new Algorithm(Kind.AEAD, "AES_GCM_16", 256)), ike.choices().get(Kind.AEAD));
    assertEquals(List.of(new Algorithm(Kind.PRF, "PRF_HMAC_SHA2_256", 0)), ike.choices().get(Kind.PRF));
    assertEquals(List.of(new Algorithm(Kind.DH, "CURVE_25519", 0)), ike.choices().get(Kind.DH));
    assertEquals("AES_GCM_16_256", ike.choices().get(Kind.AEAD).get(0).display());
    var esp = ProposalAlgorithms.esp("aes256gcm16-ecp384").get(0);
    assertEquals("ECP_384", esp.choices().get(Kind.DH).get(0).name());
  }

  @Test
  void aPlainCipherTakesItsPrfFromTheIntegrityAlgorithm() {
    var p = ProposalAlgorithms.ike("aes128-sha256-modp3072").get(0);
    assertEquals(new Algorithm(Kind.ENCRYPTION, "AES_CBC", 128), p.choices().get(Kind.ENCRYPTION).get(0));
    assertEquals("HMAC_SHA2_256_128", p.choices().get(Kind.INTEGRITY).get(0).name());
    assertEquals("PRF_HMAC_SHA2_256", p.choices().get(Kind.PRF).get(0).name());
    assertEquals("MODP_3072", p.choices().get(Kind.DH).get(0).name());
  }

  @Test
  void unknownKeywordsAndIncompleteProposalsAreRefusedByName() {
    var typo = assertThrows(IllegalArgumentException.class, () -> ProposalAlgorithms.ike("aes256gcm16-prfsha256-x2519"));
    assertTrue(typo.getMessage().startsWith("'x2519' is not a proposal keyword"), typo.getMessage());
    var noPrf = assertThrows(IllegalArgumentException.class, () -> ProposalAlgorithms.ike("aes256gcm16-x25519"));
    assertTrue(noPrf.getMessage().contains("no PRF"), noPrf.getMessage());
    var noDh = assertThrows(IllegalArgumentException.class, () -> ProposalAlgorithms.ike("aes256-sha256"));
    assertTrue(noDh.getMessage().contains("no key exchange"), noDh.getMessage());
  }

  @Test
  void charonWithoutGcmCannotDoTheDefaultsAndIsToldWhichPackageHasThem() {
    CharonAlgorithms charon = CharonAlgorithms.of(WITHOUT_GCM, STATS);
    var verdict = charon.check(ProposalAlgorithms.ike(Proposals.DEFAULT.ike()),
        ProposalAlgorithms.esp(Proposals.DEFAULT.esp()), true);
    assertFalse(verdict.capable());
    assertEquals(List.of("AES_GCM_16_256"), verdict.missing());
    assertTrue(verdict.problem().startsWith("charon cannot do AES_GCM_16_256 (IKE proposal aes256gcm16-prfsha256-x25519;"
        + " ESP proposal aes256gcm16-x25519): load the openssl or gcm plugin (Debian: libstrongswan-standard-plugins)"),
        verdict.problem());
    assertTrue(verdict.problem().endsWith("(charon loaded: charon random nonce aes)"), verdict.problem());
  }

  @Test
  void anAlternativeCharonHasIsEnough() {
    CharonAlgorithms charon = CharonAlgorithms.of(WITHOUT_GCM, STATS);
    var verdict = charon.check(ProposalAlgorithms.ike("aes256gcm16-prfsha256-x25519,aes256-sha256-x25519"),
        ProposalAlgorithms.esp("aes256gcm16-x25519,aes256-sha256"), true);
    assertTrue(verdict.capable(), verdict.problem());
  }

  @Test
  void withTheKernelDatapathEspCiphersAreTheKernelsConcern() {
    CharonAlgorithms charon = CharonAlgorithms.of(WITHOUT_GCM, STATS);
    var esp = ProposalAlgorithms.esp("aes256gcm16-ecp384");
    assertTrue(charon.check(ProposalAlgorithms.ike("aes256-sha256-x25519"), esp, false).missing().equals(List.of("ECP_384")));
    assertEquals(List.of(), charon.check(ProposalAlgorithms.ike("aes256-sha256-x25519"),
        ProposalAlgorithms.esp("aes256gcm16-x25519"), false).missing());
  }

  @Test
  void charonWithOpensslCanDoThem() {
    CharonAlgorithms charon = CharonAlgorithms.of(WITH_OPENSSL, STATS);
    assertTrue(charon.check(ProposalAlgorithms.ike("aes256gcm16-prfsha384-ecp384"),
        ProposalAlgorithms.esp("aes256gcm16-ecp384"), true).capable());
  }

  private static ViciMessage section(String... names) {
    ViciMessage.Builder b = ViciMessage.builder();
    for (String n : names) {
      b.put(n, "plugin");
    }
    return b.build();
  }

  /** charon 5.9.8 loading random nonce aes sha1 sha2 hmac pem pkcs1 x509 pubkey gmp curve25519 kdf … (no gcm, no openssl). */
  static final ViciMessage WITHOUT_GCM = ViciMessage.builder()
      .section("encryption", section("AES_CBC", "AES_ECB"))
      .section("integrity", section("HMAC_SHA1_96", "HMAC_SHA2_256_128", "HMAC_SHA2_384_192", "HMAC_SHA2_512_256"))
      .section("aead", ViciMessage.empty())
      .section("prf", section("PRF_HMAC_SHA1", "PRF_HMAC_SHA2_256", "PRF_HMAC_SHA2_384", "PRF_HMAC_SHA2_512"))
      .section("kdf", section("KDF_PRF", "KDF_PRF_PLUS"))
      .section("dh", section("MODP_2048", "MODP_3072", "MODP_4096", "CURVE_25519"))
      .build();

  static final ViciMessage WITH_OPENSSL = ViciMessage.builder()
      .section("encryption", section("AES_CBC", "AES_CTR"))
      .section("integrity", section("HMAC_SHA2_256_128", "HMAC_SHA2_384_192"))
      .section("aead", section("AES_GCM_8", "AES_GCM_12", "AES_GCM_16", "CHACHA20_POLY1305"))
      .section("prf", section("PRF_HMAC_SHA2_256", "PRF_HMAC_SHA2_384"))
      .section("kdf", section("KDF_PRF", "KDF_PRF_PLUS"))
      .section("dh", section("MODP_2048", "CURVE_25519", "ECP_256", "ECP_384"))
      .build();

  static final ViciMessage STATS = ViciMessage.builder().list("plugins", List.of("charon", "random", "nonce", "aes"))
      .build();
}

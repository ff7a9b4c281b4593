package dev.ipseccni.tunnel;

import java.util.Objects;

/**
 * Cipher suites, in strongSwan's proposal syntax.
 *
 * @param ike IKE SA proposal (an AEAD needs an explicit PRF)
 * @param esp CHILD SA proposal; a DH group here gives PFS on rekeying
 */
public record Proposals(String ike, String esp) {
  /** AES-256-GCM with X25519; both work with the openssl plugin and with libipsec. */
  public static final Proposals DEFAULT = new Proposals("aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519");

  public Proposals {
    Objects.requireNonNull(ike, "ike");
    Objects.requireNonNull(esp, "esp");
    if (!ike.matches("[a-z0-9_-]+(,[a-z0-9_-]+)*") || !esp.matches("[a-z0-9_-]+(,[a-z0-9_-]+)*")) {
      throw new IllegalArgumentException("proposals must be strongSwan proposal strings (e.g. "
          + DEFAULT.ike() + "), got ike='" + ike + "' esp='" + esp + "'");
    }
  }
}

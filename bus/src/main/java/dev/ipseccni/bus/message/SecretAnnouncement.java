package dev.ipseccni.bus.message;

/**
 * Which cluster secret a node's tunnel service derives its pair keys from, so that during
 * a rotation each side knows whether its peer already has the new secret (see
 * {@link dev.ipseccni.bus.Addresses#TUNNEL_SECRET}). Never the secret: {@code secretId} is
 * a one-way fingerprint of it, and says nothing about the secret or any key.
 *
 * @param secretId fingerprint of the node's current secret (16 hex digits)
 * @param answerWanted the node has just started and does not know the others' ids yet:
 *     every other node answers with its own announcement
 */
public record SecretAnnouncement(String secretId, boolean answerWanted) implements Payload {
  public SecretAnnouncement {
    if (secretId == null || !secretId.matches("[0-9a-f]{16}")) {
      throw new IllegalArgumentException("secretId must be 16 lower-case hex digits");
    }
  }
}

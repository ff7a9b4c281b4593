package dev.ipseccni.tunnel;

import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/** HKDF with HMAC-SHA256 (RFC 5869): extract a pseudorandom key, expand it to key material. */
public final class Hkdf {
  private static final String HMAC = "HmacSHA256";
  private static final int HASH_LEN = 32;

  private Hkdf() {}

  public static byte[] derive(byte[] salt, byte[] ikm, byte[] info, int length) {
    byte[] prk = extract(salt, ikm);
    try {
      return expand(prk, info, length);
    } finally {
      Arrays.fill(prk, (byte) 0);
    }
  }

  /** PRK = HMAC-Hash(salt, IKM); an empty salt is HashLen zero bytes. */
  public static byte[] extract(byte[] salt, byte[] ikm) {
    byte[] key = salt.length == 0 ? new byte[HASH_LEN] : salt;
    return mac(key).doFinal(ikm);
  }

  /** OKM = T(1) | T(2) | …, T(i) = HMAC-Hash(PRK, T(i-1) | info | i), first {@code length} bytes. */
  public static byte[] expand(byte[] prk, byte[] info, int length) {
    if (length < 1 || length > 255 * HASH_LEN) {
      throw new IllegalArgumentException("HKDF output length must be 1.." + 255 * HASH_LEN + ", was " + length);
    }
    Mac mac = mac(prk);
    byte[] okm = new byte[length];
    byte[] t = new byte[0];
    int done = 0;
    for (int i = 1; done < length; i++) {
      mac.update(t);
      mac.update(info);
      mac.update((byte) i);
      t = mac.doFinal();
      int n = Math.min(t.length, length - done);
      System.arraycopy(t, 0, okm, done, n);
      done += n;
    }
    Arrays.fill(t, (byte) 0);
    return okm;
  }

  private static Mac mac(byte[] key) {
    try {
      Mac mac = Mac.getInstance(HMAC);
      mac.init(new SecretKeySpec(key, HMAC));
      return mac;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK lacks " + HMAC, e);
    }
  }
}

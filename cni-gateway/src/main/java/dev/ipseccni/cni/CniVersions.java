package dev.ipseccni.cni;

import java.util.Comparator;

/** Comparing CNI spec versions ("0.3.1" &lt; "0.4.0" &lt; "1.0.0" &lt; "1.1.0"). */
public final class CniVersions {
  private CniVersions() {}

  /** The newest version the reference plugins (our delegate) understand. */
  public static final String DELEGATE_MAX = "1.0.0";
  /** CHECK appeared in 0.4.0. */
  public static final String CHECK_MIN = "0.4.0";

  public static final Comparator<String> ORDER = CniVersions::compare;

  public static int compare(String a, String b) {
    String[] x = a.split("\\.");
    String[] y = b.split("\\.");
    for (int i = 0; i < Math.max(x.length, y.length); i++) {
      int c = Integer.compare(part(x, i), part(y, i));
      if (c != 0) {
        return c;
      }
    }
    return 0;
  }

  public static boolean before(String a, String b) {
    return compare(a, b) < 0;
  }

  public static String min(String a, String b) {
    return compare(a, b) <= 0 ? a : b;
  }

  public static String max(String a, String b) {
    return compare(a, b) >= 0 ? a : b;
  }

  private static int part(String[] parts, int i) {
    if (i >= parts.length) {
      return 0;
    }
    try {
      return Integer.parseInt(parts[i]);
    } catch (NumberFormatException e) {
      return -1;
    }
  }
}

package dev.ipseccni.cni;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The {@code #define}s of one of our C headers, for the tests that hold them equal to their Java definition. */
final class CHeader {
  private CHeader() {}

  /** Every {@code #define PREFIX_NAME value} of src/main/c/fileName, name to value. */
  static Map<String, String> defines(String fileName, String prefix) throws IOException {
    Path header = Path.of(System.getProperty("ipsecCni.cSourceDir", "src/main/c"), fileName);
    Map<String, String> defines = new HashMap<>();
    Matcher m = Pattern.compile("(?m)^#define (" + Pattern.quote(prefix) + "\\w+) (.+)$").matcher(Files.readString(header));
    while (m.find()) {
      defines.put(m.group(1), m.group(2).strip());
    }
    return defines;
  }
}

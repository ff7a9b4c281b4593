package dev.ipseccni.tunnel.identity;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;

/**
 * The revocation list: node names, one a line, blank lines and '#' comments ignored. A node
 * named here gets no tunnel, its block no route, and its certificate is refused (charon has
 * no connection that accepts its identity).
 */
public final class DeniedNodes {
  private DeniedNodes() {}

  /** The names in the file; a file that does not exist denies nobody. */
  public static Set<String> read(Path file) throws IOException {
    Set<String> out = new TreeSet<>();
    try {
      for (String line : Files.readAllLines(file)) {
        int hash = line.indexOf('#');
        String name = (hash >= 0 ? line.substring(0, hash) : line).trim();
        if (!name.isEmpty()) {
          out.add(name);
        }
      }
    } catch (NoSuchFileException e) {
      return Set.of();
    }
    return Set.copyOf(out);
  }
}

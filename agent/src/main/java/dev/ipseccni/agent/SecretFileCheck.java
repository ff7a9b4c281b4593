package dev.ipseccni.agent;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The cluster secret file must exist, be at least 32 bytes and be readable by its owner
 * only: every tunnel key is derived from it.
 */
final class SecretFileCheck {
  static final int MIN_BYTES = 32;

  private SecretFileCheck() {}

  static List<String> problems(Path file) {
    if (!Files.isRegularFile(file)) {
      return List.of("secretFile: " + file + " does not exist (create it with at least " + MIN_BYTES
          + " random bytes, mode 0600)");
    }
    try {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
      Set<PosixFilePermission> others = EnumSet.copyOf(perms);
      others.removeAll(EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE));
      if (!others.isEmpty()) {
        return List.of("secretFile: " + file + " is readable beyond its owner; chmod 0600 it");
      }
      long size = Files.size(file);
      if (size < MIN_BYTES) {
        return List.of("secretFile: " + file + " holds " + size + " bytes; at least " + MIN_BYTES + " are needed");
      }
    } catch (IOException | UnsupportedOperationException e) {
      return List.of("secretFile: cannot inspect " + file + ": " + e.getMessage());
    }
    return List.of();
  }
}

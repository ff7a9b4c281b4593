package dev.ipseccni.agent;

import dev.ipseccni.tunnel.ClusterSecret;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * check-config's view of the cluster secret file: exactly what the tunnel service will do
 * with it at start ({@link ClusterSecret#load}), so a file that passes here cannot fail there.
 */
final class SecretFileCheck {
  private SecretFileCheck() {}

  static List<String> problems(Path file) {
    try {
      ClusterSecret.load(file);
      return List.of();
    } catch (IOException e) {
      return List.of("secretFile: " + e.getMessage());
    }
  }
}

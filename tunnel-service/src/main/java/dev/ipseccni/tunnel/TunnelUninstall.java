package dev.ipseccni.tunnel;

import dev.ipseccni.tunnel.vici.ViciCommandException;
import dev.ipseccni.tunnel.vici.ViciException;
import dev.ipseccni.tunnel.vici.ViciSession;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Takes out of charon every connection and pre-shared key the tunnel service loaded (the
 * "peer-" connections and their "psk-peer-" keys; nothing else of charon's), and removes
 * the rendered swanctl file, so nothing of ours steers traffic afterwards. Blocking.
 */
public final class TunnelUninstall {
  private TunnelUninstall() {}

  /** What was removed, for the operator. */
  public record Removed(List<String> connections, List<String> sharedKeys, boolean renderedFile) {}

  public static Removed run(Path viciSocket, Path renderedConfig) throws IOException {
    List<String> conns = new ArrayList<>();
    List<String> keys = new ArrayList<>();
    try (ViciSession session = ViciSession.connect(viciSocket)) {
      for (String name : session.getConns()) {
        if (!name.startsWith(PeerTunnel.PREFIX)) {
          continue;
        }
        try {
          session.terminateForced(name);
        } catch (ViciCommandException noSa) {
          // nothing established
        }
        session.unloadConn(name);
        conns.add(name);
      }
      for (String id : session.getShared()) {
        if (id.startsWith("psk-" + PeerTunnel.PREFIX)) {
          try {
            session.unloadShared(id);
            keys.add(id);
          } catch (ViciCommandException gone) {
            // already gone
          }
        }
      }
    } catch (ViciException e) {
      throw new IOException("charon at " + viciSocket + ": " + e.getMessage(), e);
    }
    return new Removed(conns, keys, Files.deleteIfExists(renderedConfig));
  }
}

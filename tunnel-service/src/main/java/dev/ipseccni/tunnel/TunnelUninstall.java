package dev.ipseccni.tunnel;

import dev.ipseccni.tunnel.vici.ViciCommandException;
import dev.ipseccni.tunnel.vici.ViciException;
import dev.ipseccni.tunnel.vici.ViciSession;
import java.io.IOException;
import java.net.ConnectException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Takes out of charon every connection and pre-shared key the tunnel service loaded (the
 * "peer-" connections and their "psk-peer-" keys; nothing else of charon's), and removes
 * the rendered swanctl file, so nothing of ours steers traffic afterwards. Blocking.
 *
 * <p>charon need not run: what the service loads into it lives only in its memory (the
 * rendered file is for inspection, charon never reads it), so a stopped charon holds
 * nothing of ours. The rendered file, which holds the keys, is removed either way.
 */
public final class TunnelUninstall {
  private TunnelUninstall() {}

  /**
   * What was removed, for the operator.
   *
   * @param charonNotRunning why nothing was unloaded from charon, when it does not run
   */
  public record Removed(List<String> connections, List<String> sharedKeys, boolean renderedFile,
                        Optional<String> charonNotRunning) {}

  /** @throws IOException when charon runs and could not be asked, or refused to unload: some of ours remains */
  public static Removed run(Path viciSocket, Path renderedConfig) throws IOException {
    boolean renderedRemoved = Files.deleteIfExists(renderedConfig);
    if (!Files.exists(viciSocket)) {
      return new Removed(List.of(), List.of(), renderedRemoved, Optional.of("no VICI socket at " + viciSocket));
    }
    List<String> conns = new ArrayList<>();
    List<String> keys = new ArrayList<>();
    ViciSession session;
    try {
      session = ViciSession.connect(viciSocket);
    } catch (ViciException e) {
      if (e.getCause() instanceof ConnectException) { // the socket of a charon that ended without removing it
        return new Removed(List.of(), List.of(), renderedRemoved,
            Optional.of("nobody accepts connections on " + viciSocket));
      }
      throw new IOException("charon at " + viciSocket + ": " + e.getMessage(), e);
    }
    try (session) {
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
    return new Removed(conns, keys, renderedRemoved, Optional.empty());
  }
}

package dev.ipseccni.tunnel;

import dev.ipseccni.tunnel.vici.ViciMessage;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads charon's log stream (VICI {@code log} events, what {@code swanctl --log} prints) for
 * the lines that say why an IKE or CHILD SA did not come up, and maps them to a few
 * reasons. ike-updown and child-updown say only that an SA went; the reason is in the log.
 *
 * <p>A line is attributed to a connection by its {@code ikesa-name}. A responder that
 * refuses the very first message has not picked a connection yet ("(unnamed)"): such
 * lines carry the peer's address instead, remembered per IKE SA from the lines before.
 *
 * <p>Not thread-safe: one instance per VICI session, fed on its event thread.
 */
final class IkeFailureLog {

  /**
   * A failure charon logged.
   *
   * @param connection the connection (ikesa-name), empty when charon had not chosen one
   * @param peerAddress the peer's address when known, empty otherwise
   * @param reason one of the five words below
   * @param line charon's log line
   */
  record IkeFailure(String connection, String peerAddress, String reason, String line) {}

  static final String AUTHENTICATION_FAILED = "authentication failed";
  static final String NO_PROPOSAL_CHOSEN = "no proposal chosen";
  static final String PEER_NOT_RESPONDING = "peer not responding";
  static final String TS_UNACCEPTABLE = "traffic selectors unacceptable";
  static final String ALGORITHM_NOT_SUPPORTED = "algorithm not supported";

  /** charon 5.9's wording, initiator and responder side; the first pattern that matches decides. */
  private static final Map<Pattern, String> LINES = orderedMap(
      "received AUTHENTICATION_FAILED notify", AUTHENTICATION_FAILED,
      "tried \\d+ shared keys? for .* but MAC mismatched", AUTHENTICATION_FAILED,
      "no shared key found for", AUTHENTICATION_FAILED,
      "authentication of '.*' with .* failed", AUTHENTICATION_FAILED,
      "no trusted .* public key found for", AUTHENTICATION_FAILED,
      "constraint check failed: identity '.*' required", AUTHENTICATION_FAILED,
      "no matching peer config found", AUTHENTICATION_FAILED,
      "received NO_PROPOSAL_CHOSEN notify", NO_PROPOSAL_CHOSEN,
      "received proposals unacceptable", NO_PROPOSAL_CHOSEN,
      "no acceptable proposal found", NO_PROPOSAL_CHOSEN,
      "giving up after \\d+ retransmits", PEER_NOT_RESPONDING,
      "peer not responding", PEER_NOT_RESPONDING,
      "received TS_UNACCEPTABLE notify", TS_UNACCEPTABLE,
      "traffic selectors .* unacceptable", TS_UNACCEPTABLE,
      "not supported!", ALGORITHM_NOT_SUPPORTED,
      "key derivation failed", ALGORITHM_NOT_SUPPORTED);

  private static final Pattern INITIATING = Pattern.compile("^(\\S+) is initiating an IKE_SA");
  private static final Pattern RECEIVED_FROM = Pattern.compile("^received packet: from ([^\\[\\s]+)\\[");
  private static final int REMEMBERED_SAS = 1024;

  /** Peer address by IKE SA unique id, for the SAs seen last. */
  private final Map<String, String> peerBySa = new LinkedHashMap<>(64, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
      return size() > REMEMBERED_SAS;
    }
  };

  /** Reads one {@code log} event; a failure when it is one of the lines above. */
  Optional<IkeFailure> read(ViciMessage log) {
    String msg = log.value("msg").orElse("");
    String sa = log.value("ikesa-uniqueid").orElse("");
    if (!sa.isEmpty()) {
      Matcher m = INITIATING.matcher(msg);
      if (m.find()) {
        peerBySa.put(sa, m.group(1));
      } else if (!peerBySa.containsKey(sa)) {
        m = RECEIVED_FROM.matcher(msg);
        if (m.find()) {
          peerBySa.put(sa, m.group(1));
        }
      }
    }
    for (Map.Entry<Pattern, String> e : LINES.entrySet()) {
      if (e.getKey().matcher(msg).find()) {
        String name = log.value("ikesa-name").orElse("");
        return Optional.of(new IkeFailure(name.startsWith(PeerTunnel.PREFIX) ? name : "",
            sa.isEmpty() ? "" : peerBySa.getOrDefault(sa, ""), e.getValue(), msg));
      }
    }
    return Optional.empty();
  }

  private static Map<Pattern, String> orderedMap(String... pairs) {
    Map<Pattern, String> out = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      out.put(Pattern.compile(pairs[i]), pairs[i + 1]);
    }
    return out;
  }
}

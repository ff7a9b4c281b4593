package dev.ipseccni.bus.message;

import java.util.List;

/**
 * What a tunnel service found when it connected to charon (at start and after every
 * reconnect, e.g. charon restarted): whether charon can do the algorithms of the proposals
 * it is given (tunnel.charon).
 *
 * @param capable every IKE and ESP proposal can be negotiated with the algorithms charon has
 * @param missing the algorithms it lacks, in charon's names with key size (e.g. AES_GCM_16_256)
 * @param problem what is wrong and the remedy, empty when capable
 * @param plugins the plugins charon loaded
 */
public record CharonCheck(boolean capable, List<String> missing, String problem, List<String> plugins)
    implements Payload {
  public CharonCheck {
    missing = missing == null ? List.of() : List.copyOf(missing);
    plugins = plugins == null ? List.of() : List.copyOf(plugins);
  }
}

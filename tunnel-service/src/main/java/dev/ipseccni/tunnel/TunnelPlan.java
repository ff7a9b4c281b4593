package dev.ipseccni.tunnel;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What to change in charon to reach the desired tunnels: the difference between the
 * desired tunnels, what this service last loaded, and the connections charon reports.
 * Linear: one pass over each side, hash lookups only.
 *
 * @param load tunnels to (re)load: new, changed, or missing from charon (e.g. after a restart)
 * @param unload connection names of ours that charon has but nobody wants any more
 */
public record TunnelPlan(List<PeerTunnel> load, List<String> unload) {
  public TunnelPlan {
    load = List.copyOf(load);
    unload = List.copyOf(unload);
  }

  public boolean isEmpty() {
    return load.isEmpty() && unload.isEmpty();
  }

  /**
   * @param desired wanted tunnels by connection name
   * @param applied what this service loaded last, by connection name
   * @param inCharon connection names charon has now (get-conns)
   */
  public static TunnelPlan between(Map<String, PeerTunnel> desired, Map<String, PeerTunnel> applied,
                                   Collection<String> inCharon) {
    Set<String> loaded = inCharon instanceof Set<String> s ? s : new java.util.HashSet<>(inCharon);
    List<PeerTunnel> load = new ArrayList<>();
    for (PeerTunnel t : desired.values()) {
      if (!t.equals(applied.get(t.connName())) || !loaded.contains(t.connName())) {
        load.add(t);
      }
    }
    List<String> unload = new ArrayList<>();
    for (String name : loaded) {
      if (name.startsWith(PeerTunnel.PREFIX) && !desired.containsKey(name)) {
        unload.add(name);
      }
    }
    return new TunnelPlan(load, unload);
  }
}

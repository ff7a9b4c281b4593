package dev.ipseccni.cni;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The CNI_ARGS variable ({@code K=V;K=V}). Keys we do not know are an error unless the
 * runtime said {@code IgnoreUnknown=1}, as the reference plugins do.
 */
public record CniArgs(Map<String, String> values) {
  public static final CniArgs NONE = new CniArgs(Map.of());

  static final Set<String> KNOWN = Set.of("IgnoreUnknown", "K8S_POD_NAME", "K8S_POD_NAMESPACE",
      "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID", "IP", "MAC");

  public CniArgs {
    values = Map.copyOf(values);
  }

  public static CniArgs parse(String raw) {
    if (raw == null || raw.isBlank()) {
      return NONE;
    }
    Map<String, String> values = new LinkedHashMap<>();
    for (String pair : raw.split(";")) {
      if (pair.isEmpty()) {
        continue;
      }
      int eq = pair.indexOf('=');
      if (eq <= 0) {
        throw new CniError(CniError.INVALID_ENVIRONMENT, "CNI_ARGS: '" + pair + "' is not KEY=VALUE");
      }
      values.put(pair.substring(0, eq), pair.substring(eq + 1));
    }
    String ignore = values.getOrDefault("IgnoreUnknown", "");
    boolean ignoreUnknown = ignore.equals("1") || ignore.equalsIgnoreCase("true");
    if (!ignoreUnknown) {
      for (Map.Entry<String, String> e : values.entrySet()) {
        if (!KNOWN.contains(e.getKey())) {
          throw new CniError(CniError.INVALID_ENVIRONMENT,
              "CNI_ARGS: unknown key " + e.getKey() + "=" + e.getValue() + " (and no IgnoreUnknown=1)");
        }
      }
    }
    return new CniArgs(values);
  }

  public String podName() {
    return values.getOrDefault("K8S_POD_NAME", "");
  }

  public String podNamespace() {
    return values.getOrDefault("K8S_POD_NAMESPACE", "");
  }
}

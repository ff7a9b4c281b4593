package dev.ipseccni.cni.plugin;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * One execution of the plugin as the runtime made it: its CNI_* environment and its stdin,
 * and what the client found out on the host (see {@link PluginProtocol#INTERFACE_PRESENT_KEY};
 * null when it did not look). This is the request body of {@link PluginProtocol}, and the
 * content of a pending-DEL file.
 */
public record PluginCall(Map<String, String> env, String stdin, Boolean interfacePresent) {
  public PluginCall {
    env = Map.copyOf(env);
    stdin = stdin == null ? "" : stdin;
  }

  /** A call whose client did not probe the pod's namespace. */
  public PluginCall(Map<String, String> env, String stdin) {
    this(env, stdin, null);
  }

  public String env(String name) {
    return env.getOrDefault(name, "");
  }

  /** The CNI_* variables of an environment (others, e.g. PATH or secrets, are not forwarded). */
  public static PluginCall of(Map<String, String> processEnv, String stdin) {
    Map<String, String> cni = new TreeMap<>();
    processEnv.forEach((k, v) -> {
      if (k.startsWith(PluginProtocol.ENV_PREFIX)) {
        cni.put(k, v);
      }
    });
    return new PluginCall(cni, stdin);
  }

  public String toJson() {
    StringBuilder json = new StringBuilder(stdin.length() + 256).append("{\"env\":{");
    boolean first = true;
    for (Map.Entry<String, String> e : new TreeMap<>(env).entrySet()) {
      if (!first) {
        json.append(',');
      }
      first = false;
      MiniJson.quote(e.getKey(), json);
      json.append(':');
      MiniJson.quote(e.getValue(), json);
    }
    json.append("},\"stdin\":");
    MiniJson.quote(stdin, json);
    if (interfacePresent != null) {
      json.append(",\"").append(PluginProtocol.INTERFACE_PRESENT_KEY).append("\":").append(interfacePresent);
    }
    return json.append('}').toString();
  }

  /** Parses a request body; throws IllegalArgumentException when it is not one. */
  public static PluginCall fromJson(String json) {
    if (!(MiniJson.parse(json) instanceof Map<?, ?> body)) {
      throw new IllegalArgumentException("request body is not a JSON object");
    }
    if (!(body.get("env") instanceof Map<?, ?> rawEnv)) {
      throw new IllegalArgumentException("request body has no \"env\" object");
    }
    Map<String, String> env = new LinkedHashMap<>();
    rawEnv.forEach((k, v) -> {
      if (!(v instanceof String s)) {
        throw new IllegalArgumentException("env." + k + " is not a string");
      }
      env.put((String) k, s);
    });
    Object stdin = body.get("stdin");
    if (stdin != null && !(stdin instanceof String)) {
      throw new IllegalArgumentException("request body's \"stdin\" is not a string");
    }
    Object present = body.get(PluginProtocol.INTERFACE_PRESENT_KEY);
    if (present != null && !(present instanceof Boolean)) {
      throw new IllegalArgumentException("request body's \"" + PluginProtocol.INTERFACE_PRESENT_KEY
          + "\" is not a boolean");
    }
    return new PluginCall(env, (String) stdin, (Boolean) present);
  }
}

package dev.ipseccni.cni;

import dev.ipseccni.bus.message.GcRequest;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The network configuration the runtime passed on stdin. Keys we do not know (including
 * {@code capabilities}, which runtimes leave in although the spec says not to) are kept
 * in {@link #raw} and ignored.
 *
 * @param cniVersion the version the runtime speaks, and the one we answer in
 * @param name the network name: part of every pod's allocation key
 * @param mtu the pod interface MTU from the config, when it names one
 */
public record NetworkConfig(String cniVersion, String name, String type, Optional<Integer> mtu, JsonObject raw) {

  /** The spec's network name; it is part of every allocation key and journal record. */
  private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9_.\\-]*");

  /**
   * Parses stdin; 6 when it is not JSON, 7 when it lacks what a network config must have
   * or a field has the wrong shape (prevResult included), 1 for an unknown version.
   */
  public static NetworkConfig parse(String stdin, List<String> supportedVersions) {
    JsonObject json;
    try {
      json = new JsonObject(stdin);
    } catch (DecodeException | ClassCastException e) {
      throw new CniError(CniError.DECODE_FAILURE, "network config on stdin is not a JSON object", e.getMessage());
    }
    String version = string(json, "cniVersion");
    if (!supportedVersions.contains(version)) {
      throw new CniError(CniError.INCOMPATIBLE_VERSION,
          "cniVersion " + version + " is not supported", "supported: " + String.join(", ", supportedVersions));
    }
    String name = string(json, "name");
    if (!NAME.matcher(name).matches()) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "network name '" + CniEnvironment.printable(name)
          + "' is invalid: the spec wants a letter or digit first, then letters, digits, '_', '.' or '-'");
    }
    Object mtu = json.getValue("mtu");
    if (mtu != null && !(mtu instanceof Number n && n.intValue() >= 576 && n.intValue() <= 65535)) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "mtu " + mtu + " is not a number from 576 to 65535");
    }
    Object type = json.getValue("type");
    if (type != null && !(type instanceof String)) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "network config \"type\" is not a string");
    }
    Object runtimeConfig = json.getValue("runtimeConfig");
    if (runtimeConfig != null && !(runtimeConfig instanceof JsonObject)) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "network config \"runtimeConfig\" is not an object");
    }
    NetworkConfig config = new NetworkConfig(version, name, type == null ? "" : (String) type,
        Optional.ofNullable(mtu).map(m -> ((Number) m).intValue()), json);
    config.prevResult();
    return config;
  }

  /** The version, as well as it can be read, for error answers to a config that failed to parse. */
  public static String versionForErrors(String stdin, String fallback) {
    try {
      String v = new JsonObject(stdin).getString("cniVersion");
      return v == null || v.isEmpty() ? fallback : v;
    } catch (RuntimeException e) {
      return fallback;
    }
  }

  private static String string(JsonObject json, String key) {
    Object value = json.getValue(key);
    if (!(value instanceof String s) || s.isEmpty()) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "network config has no \"" + key + "\"");
    }
    return s;
  }

  /** The previous result (CHECK, DEL, chained ADD), in this config's version. */
  public Optional<CniResult> prevResult() {
    Object prev = raw.getValue("prevResult");
    if (prev == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(CniResult.fromJson((JsonObject) prev));
    } catch (ClassCastException | IllegalArgumentException e) {
      // parse() called this once: a config that got past it never throws here
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "prevResult is not a CNI result", String.valueOf(e.getMessage()));
    }
  }

  /** A runtimeConfig entry the runtime supplied (only capabilities the conflist declared). */
  public Optional<Object> runtimeConfig(String capability) {
    JsonObject rc = raw.getJsonObject("runtimeConfig");
    return rc == null ? Optional.empty() : Optional.ofNullable(rc.getValue(capability));
  }

  /** GC's list of attachments to keep: {@code cni.dev/valid-attachments}, or libcni's older {@code cni.dev/attachments}. */
  public List<GcRequest.Attachment> validAttachments() {
    Object listed = raw.getValue("cni.dev/valid-attachments", raw.getValue("cni.dev/attachments"));
    if (!(listed instanceof JsonArray list)) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "GC needs cni.dev/valid-attachments");
    }
    List<GcRequest.Attachment> valid = new ArrayList<>();
    for (Object o : list) {
      if (!(o instanceof JsonObject a) || !(a.getValue("containerID") instanceof String)
          || !(a.getValue("ifname") instanceof String)) {
        throw new CniError(CniError.INVALID_NETWORK_CONFIG,
            "cni.dev/valid-attachments entry " + o + " lacks containerID or ifname");
      }
      valid.add(new GcRequest.Attachment(a.getString("containerID"), a.getString("ifname")));
    }
    return valid;
  }
}

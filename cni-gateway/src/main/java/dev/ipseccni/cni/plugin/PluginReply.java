package dev.ipseccni.cni.plugin;

/** What the plugin does with the gateway's answer: print {@code stdout}, exit with {@code exitCode}. */
public record PluginReply(int exitCode, String stdout) {
  public PluginReply {
    stdout = stdout == null ? "" : stdout;
  }

  public static PluginReply success(String stdout) {
    return new PluginReply(0, stdout);
  }

  /** A CNI error in the spec's shape ({@code cniVersion, code, msg, details}) on stdout. */
  public static PluginReply error(String cniVersion, int code, String msg, String details) {
    StringBuilder json = new StringBuilder("{\"cniVersion\":");
    MiniJson.quote(cniVersion, json);
    json.append(",\"code\":").append(code).append(",\"msg\":");
    MiniJson.quote(msg, json);
    if (details != null && !details.isEmpty()) {
      json.append(",\"details\":");
      MiniJson.quote(details, json);
    }
    return new PluginReply(code > 0 && code < 256 ? code : 1, json.append("}\n").toString());
  }
}

package dev.ipseccni.cni;

import java.util.Map;
import java.util.regex.Pattern;

/**
 * The CNI_* variables of one call, validated as the spec requires for the command:
 * ADD/CHECK need CONTAINERID, NETNS, IFNAME; DEL needs CONTAINERID, IFNAME (NETNS may be
 * empty); GC needs PATH; STATUS and VERSION need nothing more.
 */
public record CniEnvironment(CniCommand command, String containerId, String netns, String ifName, CniArgs args,
                             String path) {

  private static final Pattern CONTAINER_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.\\-]*");

  public static CniEnvironment from(Map<String, String> env) {
    CniCommand command = CniCommand.parse(env.get("CNI_COMMAND"));
    String containerId = env.getOrDefault("CNI_CONTAINERID", "");
    String netns = env.getOrDefault("CNI_NETNS", "");
    String ifName = env.getOrDefault("CNI_IFNAME", "");
    String path = env.getOrDefault("CNI_PATH", "");
    switch (command) {
      case ADD, CHECK -> {
        validContainerId(containerId);
        required("CNI_NETNS", netns, command);
        validIfName(ifName);
      }
      case DEL -> {
        validContainerId(containerId);
        validIfName(ifName);
      }
      case GC -> required("CNI_PATH", path, command);
      case STATUS, VERSION -> { }
    }
    CniArgs args = command == CniCommand.ADD || command == CniCommand.DEL || command == CniCommand.CHECK
        ? CniArgs.parse(env.get("CNI_ARGS")) : CniArgs.NONE;
    return new CniEnvironment(command, containerId, netns, ifName, args, path);
  }

  private static void required(String name, String value, CniCommand command) {
    if (value.isEmpty()) {
      throw new CniError(CniError.INVALID_ENVIRONMENT, name + " is required for " + command);
    }
  }

  static void validContainerId(String id) {
    required("CNI_CONTAINERID", id, CniCommand.ADD);
    if (!CONTAINER_ID.matcher(id).matches()) {
      throw new CniError(CniError.INVALID_ENVIRONMENT,
          "CNI_CONTAINERID '" + printable(id) + "' is invalid: it must start with a letter or digit and hold only letters,"
              + " digits, '_', '.' and '-'");
    }
  }

  static void validIfName(String name) {
    if (name.isEmpty()) {
      throw new CniError(CniError.INVALID_ENVIRONMENT, "CNI_IFNAME is required");
    }
    // The kernel counts bytes (IFNAMSIZ 16 with the NUL); control characters would end up in
    // the delegate's arguments, our logs and bus messages, so they are refused as well.
    boolean bad = name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 15 || name.equals(".")
        || name.equals("..")
        || name.chars().anyMatch(c -> c == '/' || c == ':' || Character.isWhitespace(c) || Character.isISOControl(c)
            || Character.isSurrogate((char) c));
    if (bad) {
      throw new CniError(CniError.INVALID_ENVIRONMENT, "CNI_IFNAME '" + printable(name)
          + "' is not a valid interface name (1-15 bytes, not . or .., no /, :, spaces or control characters)");
    }
  }

  /** A runtime-supplied value as it may appear in an error message: control characters escaped, length bounded. */
  static String printable(String value) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < value.length() && out.length() < 80; i++) {
      char c = value.charAt(i);
      out.append(Character.isISOControl(c) ? String.format("\\u%04x", (int) c) : String.valueOf(c));
    }
    return value.length() > 80 ? out + "..." : out.toString();
  }
}

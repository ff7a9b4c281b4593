package dev.ipseccni.cni.plugin;

import java.nio.file.Path;
import java.util.List;

/**
 * The wire protocol between the plugin binary and the node agent's CNI gateway: the one
 * definition both clients follow (the C client's {@code protocol.h} mirrors these
 * constants, and a test holds the two equal).
 *
 * <pre>
 * POST /cni HTTP/1.1                      over the Unix socket named by the conflist's agentSocket
 * Content-Type: application/json
 * {"env":{"CNI_COMMAND":"ADD",...},"stdin":"&lt;the network config, verbatim&gt;","interfacePresent":false}
 *
 * HTTP/1.1 200 OK
 * Cni-Exit-Code: 0                        the exit code the plugin must exit with
 * &lt;body&gt;                                  exactly what the plugin prints on stdout
 * </pre>
 *
 * The socket is the config's {@link #SOCKET_KEY}, else {@link #SOCKET_ENV}, else
 * {@link #DEFAULT_SOCKET}. Any other HTTP status means the gateway could not process the call at all; the client
 * then reports it as a CNI error of its own. VERSION is answered by the client without
 * the agent. When the socket cannot be reached, a DEL is written to {@link #pendingDelDir}
 * (one file per attachment, named by {@link #pendingDelFileName}, content = the request
 * body) and the agent replays it when it is back.
 */
public final class PluginProtocol {
  private PluginProtocol() {}

  public static final String PATH = "/cni";
  public static final String METHOD = "POST";
  public static final String CONTENT_TYPE = "application/json";
  public static final String EXIT_CODE_HEADER = "Cni-Exit-Code";

  /** The conflist key that names the agent's socket; absent means {@link #DEFAULT_SOCKET}. */
  public static final String SOCKET_KEY = "agentSocket";
  public static final String DEFAULT_SOCKET = "/run/ipsec-cni/cni.sock";
  /**
   * Environment variable naming the socket when the config names none (or cannot be read):
   * for hosts where the runtime's environment, not the conflist, says where the agent is.
   */
  public static final String SOCKET_ENV = "IPSEC_CNI_AGENT_SOCKET";
  /** Directory beside the socket where DELs wait for the agent. */
  public static final String PENDING_DEL_DIR_NAME = "pending-del";
  public static final String PENDING_DEL_SUFFIX = ".json";

  /**
   * Largest request body the gateway reads (env + stdin, as JSON). A network config is a few
   * KiB and a GC's attachment list a few hundred bytes per pod; a bigger body is answered
   * with {@link #CODE_INVALID_NETWORK_CONFIG} after being read and discarded, never buffered.
   */
  public static final int MAX_REQUEST_BYTES = 1024 * 1024;

  /**
   * Optional request key, on ADD only: whether the client found CNI_IFNAME already in
   * CNI_NETNS (it runs on the host already; the agent would have to exec a helper to look).
   * Absent: the gateway looks itself.
   */
  public static final String INTERFACE_PRESENT_KEY = "interfacePresent";

  /**
   * The plugin binary is also the IPAM plugin of the agent's datapath. The agent runs the
   * reference bridge plugin with {@code "ipam": {"type": IPAM_TYPE, IPAM_RESULT_KEY: <result>}},
   * the result holding the address the agent's IPAM already gave; bridge then execs this
   * binary (found in CNI_PATH like any IPAM plugin), which answers from the config alone,
   * without the agent: ADD prints the result, DEL, CHECK, GC and STATUS succeed with
   * nothing to do (the agent releases and checks addresses itself). A config whose
   * {@code ipam.type} is this is never forwarded to the agent.
   */
  public static final String IPAM_TYPE = "ipsec-cni";
  public static final String IPAM_RESULT_KEY = "result";

  /** Environment variables whose name starts with this are forwarded. */
  public static final String ENV_PREFIX = "CNI_";

  /** CNI versions we answer, oldest first; the last is the one we implement. */
  public static final List<String> SUPPORTED_VERSIONS = List.of("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0");

  public static final int CODE_INCOMPATIBLE_VERSION = 1;
  public static final int CODE_INVALID_ENVIRONMENT = 4;
  public static final int CODE_IO_FAILURE = 5;
  public static final int CODE_DECODE_FAILURE = 6;
  public static final int CODE_INVALID_NETWORK_CONFIG = 7;
  public static final int CODE_TRY_AGAIN_LATER = 11;
  public static final int CODE_NOT_AVAILABLE = 50;
  /** The gateway answered, but not with a CNI answer (HTTP error, truncated reply). */
  public static final int CODE_BAD_AGENT_REPLY = 120;

  public static Path pendingDelDir(Path socket) {
    Path parent = socket.toAbsolutePath().getParent();
    return parent.resolve(PENDING_DEL_DIR_NAME);
  }

  /**
   * One file per (container, interface), so a repeated DEL overwrites rather than piles
   * up; hex keeps any runtime-supplied characters out of the path.
   */
  public static String pendingDelFileName(String containerId, String ifName) {
    StringBuilder name = new StringBuilder("del-");
    for (byte b : (containerId + "\n" + ifName).getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
      name.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
    }
    return name.append(PENDING_DEL_SUFFIX).toString();
  }
}

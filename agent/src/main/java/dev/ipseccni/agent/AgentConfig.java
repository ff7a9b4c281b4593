package dev.ipseccni.agent;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.IpPrefix;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The agent's configuration, read from one JSON file (docs/agent-config.md). Every value
 * is checked when it is read; {@link #load} reports each bad value on its own.
 */
public record AgentConfig(
    String nodeName,
    String underlayAddress,
    Cluster cluster,
    Network network,
    List<String> services,
    Path stateDir,
    Path cniSocket,
    Path cniConfDir,
    Charon charon,
    Path secretFile,
    Api api,
    Log log,
    Journal journal,
    Timings timings) {

  public static final List<String> ALL_SERVICES = List.of("ipam", "tunnel", "firewall", "cni-gateway");

  /**
   * @param tls mutual TLS for the event bus between agents (cluster.tls); empty = plain TCP
   * @param discoveryDns members found by resolving this name (cluster.discovery.dns), instead of {@code members}
   * @param overIpsec the cluster's ports reached only through host-to-host IPsec SAs (cluster.overIpsec;
   *     opt-in, only with the kernel datapath, certificates and the tunnel service)
   */
  public record Cluster(String name, int port, int eventBusPort, List<String> members, int expectedMembers,
                        boolean liteMember, Optional<ClusterSettings.Tls> tls, Optional<String> discoveryDns,
                        boolean overIpsec) {

    /** The join list's addresses, without ports. */
    public List<String> memberAddresses() {
      return members.stream()
          .map(m -> m.contains(":") && !m.startsWith("[") && m.indexOf(':') == m.lastIndexOf(':')
              ? m.substring(0, m.indexOf(':')) : m)
          .toList();
    }
  }

  /**
   * @param mtu the pods' MTU when set (network.mtu); otherwise derived from the underlay link at start
   * @param cniVersion the cniVersion of the conflist the agent writes (what runtimes send and expect back)
   */
  public record Network(String name, String clusterCidr, int blockPrefixLength, Optional<String> preferredBlock,
                        String bridge, java.util.OptionalInt mtu, String cniVersion) {}

  /**
   * @param ikeProposals IKE SA proposals (strongSwan syntax)
   * @param espProposals CHILD SA proposals
   * @param auth how IKE authenticates (charon.auth): the node's certificate (default) or pair keys from the secret file
   */
  public record Charon(Path viciSocket, String datapath, String ikeProposals, String espProposals,
                       dev.ipseccni.tunnel.identity.IkeAuth auth) {}

  public record Api(String address, int port) {
    public boolean enabled() {
      return port != 0;
    }
  }

  public record Log(String format, String level) {}

  /**
   * The optional Kafka journal of every bus event.
   *
   * @param bootstrap Kafka bootstrap servers (host:port,…); empty turns the journal off
   * @param topic the topic; records are keyed by the publishing node's name
   * @param bufferEvents events held while Kafka is slow or away; beyond that they are dropped and counted
   */
  public record Journal(String bootstrap, String topic, int bufferEvents) {
    public static final String DEFAULT_TOPIC = "ipsec-cni-events";

    public boolean enabled() {
      return !bootstrap.isEmpty();
    }
  }

  /**
   * How often the services renew, reconcile and check, how long a silent node keeps its
   * block, and how long IPAM collects allocations before writing them to the address mirror.
   */
  public record Timings(java.time.Duration leaseRenew, java.time.Duration leaseGrace,
                        java.time.Duration tunnelReconcile, java.time.Duration firewallCheck,
                        java.time.Duration secretGrace, java.time.Duration ipamMirrorDelay) {}

  public boolean runs(String service) {
    return services.contains(service);
  }

  private static final Pattern NODE_NAME = Pattern.compile("[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?");
  /** Labels of letters, digits and '-', dot-separated, up to 253 characters; an optional final dot. */
  private static final Pattern DNS_NAME =
      Pattern.compile("(?=.{1,253}\\.?$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\\.?");
  private static final Pattern IFNAME = Pattern.compile("[A-Za-z0-9_.-]{1,15}");

  /** Reads and checks the file; a {@link ConfigException} lists every problem found. */
  public static AgentConfig load(Path file) throws ConfigException {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(Files.readAllBytes(file));
    } catch (JsonProcessingException e) {
      throw new ConfigException(List.of(file + ": not valid JSON: " + e.getOriginalMessage()
          + " at line " + e.getLocation().getLineNr()));
    } catch (IOException e) {
      throw new ConfigException(List.of(file + ": cannot read: " + e));
    }
    if (root == null || !root.isObject()) {
      throw new ConfigException(List.of(file + ": expected a JSON object"));
    }
    return parse(root);
  }

  static AgentConfig parse(JsonNode root) throws ConfigException {
    Reader r = new Reader(root);

    String nodeName = r.text("nodeName", hostName());
    if (!NODE_NAME.matcher(nodeName).matches()) {
      r.problem("nodeName: '" + nodeName + "' must be a DNS label (lower-case letters, digits, '-', '.'; up to 63)");
    }
    String underlay = r.text("underlayAddress", "");
    if (underlay.isEmpty()) {
      r.problem("underlayAddress: required (the node's address on the underlay network)");
    } else {
      r.checkAddress("underlayAddress", underlay);
    }

    String clusterName = r.text("cluster.name", "ipsec-cni");
    int port = r.port("cluster.port", 5701, false);
    int busPort = r.port("cluster.eventBusPort", 5702, true);
    // Values derived from underlayAddress are checked with it, not reported twice.
    boolean explicitMembers = r.present("cluster.members");
    List<String> members = r.textList("cluster.members", underlay.isEmpty() ? List.of() : List.of(underlay));
    for (String m : explicitMembers ? members : List.<String>of()) {
      String host = m.contains(":") && !m.startsWith("[") && m.indexOf(':') == m.lastIndexOf(':')
          ? m.substring(0, m.indexOf(':')) : m;
      r.checkAddress("cluster.members", host);
    }
    if (members.isEmpty() && (explicitMembers || !underlay.isEmpty())) {
      r.problem("cluster.members: at least one member address is needed");
    }
    Optional<String> discoveryDns = Optional.empty();
    if (r.present("cluster.discovery")) {
      String dns = r.text("cluster.discovery.dns", "");
      if (!DNS_NAME.matcher(dns).matches()) {
        r.problem("cluster.discovery.dns: '" + dns + "' must be a DNS name (e.g. ipsec-cni.ipsec-cni.svc.cluster.local)");
      } else {
        discoveryDns = Optional.of(dns);
      }
      if (explicitMembers) {
        r.problem("cluster.members: not used with cluster.discovery.dns (the DNS answer is the member list); set one");
      }
      // A DNS answer says who is listed now, not how many nodes the cluster has: the majority
      // that guards block claims must be stated.
      if (!r.present("cluster.expectedMembers")) {
        r.problem("cluster.expectedMembers: required with cluster.discovery.dns (the number of nodes)");
      }
    }
    int expected = r.integer("cluster.expectedMembers", Math.max(1, members.size()), 1, Integer.MAX_VALUE);
    boolean lite = r.bool("cluster.liteMember", false);
    Optional<ClusterSettings.Tls> tls = Optional.empty();
    if (r.present("cluster.tls") && !r.isObject("cluster.tls")) {
      r.problem("cluster.tls: expected an object {certFile, keyFile, caFile}, got " + r.raw("cluster.tls"));
    } else if (r.present("cluster.tls")) {
      List<Path> files = new ArrayList<>();
      for (String key : List.of("certFile", "keyFile", "caFile")) {
        String path = "cluster.tls." + key;
        if (!r.present(path)) {
          r.problem(path + ": required when cluster.tls is set (PEM file)");
          continue;
        }
        Path file = r.absolutePath(path, "");
        if (file.isAbsolute() && !Files.isReadable(file)) {
          r.problem(path + ": " + file + " does not exist or is not readable");
        }
        files.add(file);
      }
      if (files.size() == 3) {
        tls = Optional.of(new ClusterSettings.Tls(files.get(0), files.get(1), files.get(2)));
      }
    }

    String networkName = r.text("network.name", "ipsec-cni");
    String cidr = r.text("network.clusterCidr", "10.128.0.0/16");
    int beforeBlock = r.problems.size();
    int blockLen = r.integer("network.blockPrefixLength", 24, 1, 32);
    boolean blockLenRead = r.problems.size() == beforeBlock;
    Optional<String> preferred = r.optionalText("network.preferredBlock");
    IpPrefix clusterPrefix = prefix(cidr).orElse(null);
    if (clusterPrefix == null) {
      r.problem("network.clusterCidr: '" + cidr + "' is not a network in CIDR notation (e.g. 10.128.0.0/16)");
    } else if (blockLenRead) {
      if (blockLen <= clusterPrefix.prefixLength()) {
        r.problem("network.blockPrefixLength: /" + blockLen + " is not smaller than the cluster CIDR " + cidr
            + " (a node block must be a part of it)");
      }
      if (blockLen > clusterPrefix.bits() - 2) {
        r.problem("network.blockPrefixLength: /" + blockLen + " leaves no pod address after the gateway");
      }
      if (preferred.isPresent()) {
        Optional<IpPrefix> block = prefix(preferred.get());
        if (block.isEmpty()) {
          r.problem("network.preferredBlock: '" + preferred.get() + "' is not a network in CIDR notation");
        } else if (block.get().prefixLength() != blockLen || !clusterPrefix.contains(block.get())) {
          r.problem("network.preferredBlock: " + preferred.get() + " is not a /" + blockLen + " block of " + cidr);
        }
      }
    }
    String bridge = r.text("network.bridge", "cni0");
    if (!IFNAME.matcher(bridge).matches()) {
      r.problem("network.bridge: '" + bridge + "' is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)");
    }
    // absent: derived from the underlay link at start (PodMtu)
    java.util.OptionalInt mtu = r.present("network.mtu")
        ? java.util.OptionalInt.of(r.integer("network.mtu", 1400, 576, 9000)) : java.util.OptionalInt.empty();
    String cniVersion = r.text("network.cniVersion", dev.ipseccni.cni.Conflist.DEFAULT_CNI_VERSION);
    if (!dev.ipseccni.cni.Conflist.VERSIONS.contains(cniVersion)) {
      r.problem("network.cniVersion: '" + cniVersion + "' must be one of " + dev.ipseccni.cni.Conflist.VERSIONS
          + " (1.1.0 makes runtimes send GC and STATUS, but libcni before 1.2 rejects its results)");
    }

    List<String> services = r.textList("services", ALL_SERVICES);
    for (String s : services) {
      if (!ALL_SERVICES.contains(s)) {
        r.problem("services: unknown service '" + s + "' (known: " + String.join(", ", ALL_SERVICES) + ")");
      }
    }

    Path stateDir = r.absolutePath("stateDir", "/run/ipsec-cni");
    Path cniSocket = r.absolutePath("cniSocket", stateDir.resolve("cni.sock").toString());
    Path confDir = r.absolutePath("cniConfDir", "/etc/cni/net.d");
    Path vici = r.absolutePath("charon.viciSocket", "/var/run/charon.vici");
    String datapath = r.choice("charon.datapath", "kernel", List.of("kernel", "libipsec"));
    String ikeProposals = r.text("charon.ikeProposals", dev.ipseccni.tunnel.Proposals.DEFAULT.ike());
    String espProposals = r.text("charon.espProposals", dev.ipseccni.tunnel.Proposals.DEFAULT.esp());
    try {
      dev.ipseccni.tunnel.ProposalAlgorithms.ike(ikeProposals);
    } catch (IllegalArgumentException e) {
      r.problem("charon.ikeProposals: '" + ikeProposals + "': " + e.getMessage());
    }
    try {
      dev.ipseccni.tunnel.ProposalAlgorithms.esp(espProposals);
    } catch (IllegalArgumentException e) {
      r.problem("charon.espProposals: '" + espProposals + "': " + e.getMessage());
    }
    Path secret = r.absolutePath("secretFile", "/etc/ipsec-cni/cluster-secret");
    dev.ipseccni.tunnel.identity.IkeAuth auth = ikeAuth(r);
    boolean ipsecCapable = datapath.equals("kernel") && auth instanceof dev.ipseccni.tunnel.identity.IkeAuth.Certificates
        && services.contains("tunnel");
    // on wherever it can be: kernel ESP (the firewall's policy match sees it) and node certificates
    boolean overIpsec = r.bool("cluster.overIpsec", ipsecCapable);
    if (overIpsec && !ipsecCapable) {
      r.problem("cluster.overIpsec: true needs charon.datapath 'kernel', charon.auth 'certificate' and the tunnel"
          + " service (libipsec's ESP is invisible to the firewall's policy match; pair keys identify no node)");
    }

    String apiAddress = r.text("api.address", underlay);
    int apiPort = r.port("api.port", 9750, true);
    if (apiPort != 0 && r.present("api.address")) {
      r.checkAddress("api.address", apiAddress);
    }
    String format = r.choice("log.format", "text", List.of("text", "json"));
    String level = r.choice("log.level", "INFO", List.of("DEBUG", "INFO", "WARN", "ERROR"));

    String kafkaBootstrap = r.text("journal.kafka.bootstrap", "");
    for (String server : kafkaBootstrap.isEmpty() ? new String[0] : kafkaBootstrap.split(",")) {
      if (!server.trim().matches("[A-Za-z0-9_.-]+:\\d{1,5}|\\[[0-9A-Fa-f:.]+\\]:\\d{1,5}")) {
        r.problem("journal.kafka.bootstrap: '" + server.trim() + "' is not host:port");
      }
    }
    String kafkaTopic = r.text("journal.kafka.topic", Journal.DEFAULT_TOPIC);
    if (!kafkaTopic.matches("[A-Za-z0-9._-]{1,249}")) {
      r.problem("journal.kafka.topic: '" + kafkaTopic + "' is not a Kafka topic name (1-249 of A-Z a-z 0-9 . _ -)");
    }
    int kafkaBuffer = r.integer("journal.kafka.bufferEvents", 10_000, 1, 10_000_000);

    int beforeLease = r.problems.size();
    int renew = r.integer("ipam.leaseRenewSeconds", 30, 1, 86_400);
    int grace = r.integer("ipam.leaseGraceSeconds", 600, 1, 30 * 86_400);
    if (r.problems.size() == beforeLease && grace < 3 * renew) {
      r.problem("ipam.leaseGraceSeconds: " + grace + " must be at least three renewals (" + 3 * renew
          + "), or a live node could lose its block");
    }
    // beyond a minute the cluster's address mirror, and its duplicate check, lag that far behind
    int mirrorDelay = r.integer("ipam.mirrorDelayMillis", 500, 1, 60_000);
    int reconcile = r.integer("charon.reconcileSeconds", 10, 1, 86_400);
    int secretGrace = r.integer("charon.secretGraceSeconds", 3600, 0, Integer.MAX_VALUE);
    int check = r.integer("firewall.checkSeconds", 5, 1, 86_400);

    r.checkNoUnknownKeys();
    if (!r.problems.isEmpty()) {
      throw new ConfigException(r.problems);
    }
    return new AgentConfig(nodeName, underlay,
        new Cluster(clusterName, port, busPort, members, expected, lite, tls, discoveryDns, overIpsec),
        new Network(networkName, cidr, blockLen, preferred, bridge, mtu, cniVersion),
        List.copyOf(services), stateDir, cniSocket, confDir, new Charon(vici, datapath, ikeProposals, espProposals, auth), secret,
        new Api(apiAddress, apiPort), new Log(format, level), new Journal(kafkaBootstrap, kafkaTopic, kafkaBuffer),
        new Timings(java.time.Duration.ofSeconds(renew), java.time.Duration.ofSeconds(grace),
            java.time.Duration.ofSeconds(reconcile), java.time.Duration.ofSeconds(check),
            java.time.Duration.ofSeconds(secretGrace), java.time.Duration.ofMillis(mirrorDelay)));
  }

  /** charon.auth and, for certificates, the files of the node's IKE identity (checked with the environment). */
  private static dev.ipseccni.tunnel.identity.IkeAuth ikeAuth(Reader r) {
    String auth = r.text("charon.auth", "certificate");
    if (auth.equals("psk")) {
      return new dev.ipseccni.tunnel.identity.IkeAuth.Psk();
    }
    if (!auth.equals("certificate")) {
      r.problem("charon.auth: '" + auth + "' must be 'certificate' or 'psk'");
    }
    return new dev.ipseccni.tunnel.identity.IkeAuth.Certificates(
        r.absolutePath("charon.certificate", "/etc/ipsec-cni/pki/node.crt"),
        r.absolutePath("charon.privateKey", "/etc/ipsec-cni/pki/node.key"),
        r.absolutePath("charon.caCertificate", "/etc/ipsec-cni/pki/ca.crt"),
        r.present("charon.deniedNodesFile") ? Optional.of(r.absolutePath("charon.deniedNodesFile", "")) : Optional.empty());
  }

  /**
   * Checks what lies outside the file: the node's certificate, key and CA (or the secret
   * file with pre-shared keys) and charon's socket, needed only
   * when the tunnel service runs. Kept apart from parsing so the file can be checked on a
   * machine without charon.
   */
  public List<String> checkEnvironment() {
    List<String> problems = new ArrayList<>();
    if (runs("tunnel")) {
      if (charon.auth() instanceof dev.ipseccni.tunnel.identity.IkeAuth.Certificates files) {
        try {
          dev.ipseccni.tunnel.identity.NodeIdentity.load(files, nodeName, underlayAddress, java.time.Instant.now());
        } catch (dev.ipseccni.tunnel.identity.IdentityException e) {
          problems.add(e.getMessage());
        }
      } else {
        problems.addAll(SecretFileCheck.problems(secretFile));
      }
      if (!Files.exists(charon.viciSocket())) {
        problems.add("charon.viciSocket: " + charon.viciSocket() + " does not exist (is charon running?)");
      } else if (!ViciSocketProbe.connects(charon.viciSocket())) {
        problems.add("charon.viciSocket: " + charon.viciSocket() + " refuses connections (is charon running?)");
      }
    }
    return problems;
  }

  private static Optional<IpPrefix> prefix(String cidr) {
    try {
      return Optional.of(IpPrefix.parse(cidr));
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  private static boolean isAddress(String literal) {
    try {
      IpPrefix.parseAddress(literal);
      return true;
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static String hostName() {
    try {
      return InetAddress.getLocalHost().getHostName().toLowerCase();
    } catch (UnknownHostException e) {
      return "";
    }
  }

  /**
   * Walks the JSON with dotted paths, collecting problems instead of stopping at the first.
   * Every path the parser asks for is a known key; what the file holds beyond them is
   * reported by {@link #checkNoUnknownKeys}, so the list of keys lives in one place: the
   * parser above.
   */
  private static final class Reader {
    private final JsonNode root;
    final List<String> problems = new ArrayList<>();
    /** Every path asked for, and each of its parents, in the order the parser reads them. */
    private final Set<String> known = new LinkedHashSet<>();

    Reader(JsonNode root) {
      this.root = root;
    }

    void problem(String message) {
      problems.add(message);
    }

    private JsonNode at(String path) {
      for (int dot = path.indexOf('.'); dot > 0; dot = path.indexOf('.', dot + 1)) {
        known.add(path.substring(0, dot));
      }
      known.add(path);
      JsonNode node = root;
      for (String part : path.split("\\.")) {
        if (node == null || !node.isObject()) {
          return null;
        }
        node = node.get(part);
      }
      return node == null || node.isNull() ? null : node;
    }

    boolean present(String path) {
      return at(path) != null;
    }

    String text(String path, String fallback) {
      JsonNode node = at(path);
      if (node == null) {
        return fallback;
      }
      if (!node.isTextual()) {
        problem(path + ": expected a string, got " + node);
        return fallback;
      }
      return node.asText();
    }

    Optional<String> optionalText(String path) {
      JsonNode node = at(path);
      return node == null ? Optional.empty() : Optional.of(text(path, ""));
    }

    boolean isObject(String path) {
      JsonNode node = at(path);
      return node != null && node.isObject();
    }

    String raw(String path) {
      return String.valueOf(at(path));
    }

    /** An integer in min..max; a wrong type or a value out of range is a problem and gives the fallback. */
    int integer(String path, int fallback, int min, int max) {
      JsonNode node = at(path);
      if (node == null) {
        return fallback;
      }
      String range = max == Integer.MAX_VALUE ? (min == 0 ? "not negative" : "at least " + min) : min + ".." + max;
      if (!node.isInt()) {
        problem(path + ": expected an integer (" + range + "), got " + node);
        return fallback;
      }
      int value = node.asInt();
      if (value < min || value > max) {
        problem(path + ": " + value + (max == Integer.MAX_VALUE
            ? (min == 0 ? " must not be negative" : " must be at least " + min) : " is outside " + range));
        return fallback;
      }
      return value;
    }

    int port(String path, int fallback, boolean zeroAllowed) {
      JsonNode node = at(path);
      int min = zeroAllowed ? 0 : 1;
      if (node == null) {
        return fallback;
      }
      if (!node.isInt()) {
        problem(path + ": expected a port number (" + min + "..65535), got " + node);
        return fallback;
      }
      int port = node.asInt();
      if (port < min || port > 65535) {
        problem(path + ": " + port + " is not a port number (" + min + "..65535"
            + (zeroAllowed ? ", 0 = off" : "") + ")");
        return fallback;
      }
      return port;
    }

    /** One of a fixed set of strings. */
    String choice(String path, String fallback, List<String> allowed) {
      String quoted = allowed.stream().map(a -> "'" + a + "'").collect(Collectors.joining(", "));
      JsonNode node = at(path);
      if (node == null) {
        return fallback;
      }
      if (!node.isTextual()) {
        problem(path + ": expected one of " + quoted + ", got " + node);
        return fallback;
      }
      if (!allowed.contains(node.asText())) {
        problem(path + ": '" + node.asText() + "' must be one of " + quoted);
        return fallback;
      }
      return node.asText();
    }

    /**
     * Names every key of the file the parser did not ask for, by its full path, with the
     * keys known beside it; and every section that is not an object.
     */
    void checkNoUnknownKeys() {
      checkSection("", root);
    }

    private void checkSection(String path, JsonNode section) {
      String prefix = path.isEmpty() ? "" : path + ".";
      List<String> siblings = known.stream()
          .filter(k -> k.startsWith(prefix) && k.indexOf('.', prefix.length()) < 0)
          .map(k -> k.substring(prefix.length()))
          .toList();
      for (Iterator<Map.Entry<String, JsonNode>> it = section.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        String key = prefix + field.getKey();
        JsonNode value = field.getValue();
        if (!known.contains(key)) {
          problems.add(key + ": unknown key (known: " + String.join(", ", siblings) + ")");
        } else if (isSection(key) && !value.isNull()) {
          if (value.isObject()) {
            checkSection(key, value);
          } else {
            problems.add(key + ": expected an object, got " + value);
          }
        }
      }
    }

    private boolean isSection(String path) {
      return known.stream().anyMatch(k -> k.startsWith(path + "."));
    }

    boolean bool(String path, boolean fallback) {
      JsonNode node = at(path);
      if (node == null) {
        return fallback;
      }
      if (!node.isBoolean()) {
        problem(path + ": expected true or false, got " + node);
        return fallback;
      }
      return node.asBoolean();
    }

    List<String> textList(String path, List<String> fallback) {
      JsonNode node = at(path);
      if (node == null) {
        return fallback;
      }
      if (!node.isArray()) {
        problem(path + ": expected a list of strings, got " + node);
        return fallback;
      }
      List<String> values = new ArrayList<>();
      for (JsonNode item : node) {
        if (!item.isTextual()) {
          problem(path + ": expected a list of strings, got item " + item);
        } else {
          values.add(item.asText());
        }
      }
      return values;
    }

    Path absolutePath(String path, String fallback) {
      String value = text(path, fallback);
      Path p = Path.of(value);
      if (!p.isAbsolute()) {
        problem(path + ": '" + value + "' must be an absolute path");
      }
      return p;
    }

    void checkAddress(String path, String literal) {
      if (!isAddress(literal)) {
        problem(path + ": '" + literal + "' is not an IP address");
      }
    }
  }
}

package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ipseccni.tunnel.vici.ViciMessage;
import dev.ipseccni.tunnel.vici.ViciSession;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The node image, built and run the way the DaemonSet runs it. The image is built from the
 * repository's Containerfile on a Debian 12 root made here (no registry), and lab node 3 gets
 * no agent or charon from the lab: the DaemonSet's init container, then its charon and agent
 * containers run from the image with podman, privileged, in that node's network namespace,
 * with the command, args, environment and hostPath mounts read from {@code k8s/} itself.
 * Lab nodes 1 and 2 run as the lab runs them. The image node must install the plugin into its
 * CNI bin dir, start charon, join the others, bring the tunnels up and serve a pod that pings a
 * pod on node 1 through them.
 *
 * <p>A manifest that names a command the image lacks, an environment variable nothing in the
 * container reads, a mount path nothing in the image uses, or a hostPath the lab node has no
 * place for fails the test with that name.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ImageDaemonSetTest {

  private static final Duration UP = Duration.ofMinutes(3);
  private static final int IMAGE_NODE = 3;
  private static final String PREFIX = CniLab.PREFIX;

  /**
   * Where each hostPath of the DaemonSet is on the image node. A lab node is a network
   * namespace on this machine, so what the kernel shares (the namespaces' bind mounts, the
   * iptables lock every node's iptables takes) is the machine's own; the rest is the node's
   * directory in the lab. Values: a path, with {@code NODE} for the node's lab directory.
   */
  private static final Map<String, String> HOST_PATHS = Map.of(
      // issued by the lab's CA for node3 (pki issue) before the agent starts, as the DaemonSet expects
      "/etc/ipsec-cni/pki", "NODE/ike",
      "/run/ipsec-cni", "NODE/state",
      "/etc/cni/net.d", "NODE/cni/net.d",
      "/opt/cni/bin", "NODE/cni/bin",
      "/run/netns", "/run/netns",
      "/run/xtables.lock", "/run/xtables.lock");

  /**
   * Paths a container is handed at run time, or that a program in the image uses by its own
   * convention: a mount there is used though no script or configuration names it. Each
   * program's file must contain the path.
   */
  private static final Map<String, String> USED_BY_CONVENTION = Map.of(
      "/run/xtables.lock", "iptables");
  /** Named by the runtime in each CNI call the agent serves (CNI_NETNS, CNI_PATH): proven by the pod added below. */
  private static final Set<String> GIVEN_BY_THE_RUNTIME = Set.of("/run/netns", "/opt/cni/bin");

  private LabHarness lab;
  private NodeImage image;
  private DaemonSetPod pod;
  private Path work;
  private String imageName;

  @BeforeAll
  void buildImage() throws IOException {
    for (String tool : List.of("/usr/bin/mmdebstrap", "/usr/bin/podman", "/usr/sbin/runc")) {
      assertTrue(Files.isExecutable(Path.of(tool)), tool + " is not installed (scripts/install-deps)");
    }
    lab = new LabHarness();
    Path repo = lab.repoRoot();
    for (String built : List.of("agent/target/ipsec-cni-agent.jar", "cni-gateway/target/ipsec-cni")) {
      assertTrue(Files.isRegularFile(repo.resolve(built)), repo.resolve(built) + " missing: run mvn -DskipTests install first");
    }
    pod = DaemonSetPod.read(repo.resolve("k8s"));
    TreeSet<String> images = new TreeSet<>();
    pod.containers().forEach(c -> images.add(c.image()));
    assertEquals(1, images.size(), "the DaemonSet's containers should all run the one node image: " + images);
    imageName = images.first();
    work = Path.of("/var/tmp/ipsec-cni-image-" + PREFIX.replaceAll("[^a-z0-9]", ""));
    image = new NodeImage(work);
    image.close(); // what a crashed run left
    image = new NodeImage(work);
    // The manifests' image name, tagged on the local build: the containers start from exactly what they name.
    image.build(repo, repo.resolve("Containerfile"), List.of("localhost/" + imageName));
  }

  @AfterAll
  void tearDown() throws IOException {
    try {
      if (image != null) {
        image.close();
      }
    } finally {
      if (lab != null) {
        lab.close();
      }
    }
  }

  @Test
  @Order(1)
  void everyCommandEnvVariableAndMountOfTheManifestsIsOneTheImageHasAndUses() {
    assertEquals(List.of(), disagreements(pod), "the manifests and the image " + imageName + " disagree");
  }

  /** The check itself, on the manifests with three faults planted (a probe's command, an env var, a mount): each is named. */
  @Test
  @Order(1)
  void aCommandTheImageLacksAnUnreadVariableAndAnUnusedMountAreEachNamed() {
    DaemonSetPod planted = pod.copy();
    for (JsonNode c : planted.podSpec().path("containers")) {
      if (c.path("name").asText().equals("charon")) {
        ((ObjectNode) c.path("livenessProbe").path("exec")).putArray("command").add("strongswan-stats");
      }
      if (c.path("name").asText().equals("agent")) {
        ((com.fasterxml.jackson.databind.node.ArrayNode) c.path("env")).addObject()
            .put("name", "IPSEC_CNI_LOG_LEVEL").put("value", "DEBUG");
        ((com.fasterxml.jackson.databind.node.ArrayNode) c.path("volumeMounts")).addObject()
            .put("name", "cni-conf").put("mountPath", "/etc/ipsec-cni/cni");
      }
    }
    List<String> found = disagreements(planted);
    assertEquals(List.of(
        "container charon: command strongswan-stats is not in the image (PATH "
            + String.join(":", image.path(imageName)) + ")",
        "container agent: env IPSEC_CNI_LOG_LEVEL is read by none of [/usr/local/bin/ipsec-cni-render-config, /usr/bin/ipsec-cni]",
        "container agent: mount /etc/ipsec-cni/cni (volume cni-conf) is a path nothing in the image uses"), found);
  }

  private List<String> disagreements(DaemonSetPod pod) {
    List<String> disagreements = new ArrayList<>();
    ObjectNode baseConfig = baseConfig();
    for (DaemonSetPod.Container c : pod.containers()) {
      List<List<String>> commands = new ArrayList<>();
      commands.add(c.command().isEmpty() ? List.of("(none)") : c.command());
      for (String probe : List.of("startupProbe", "livenessProbe", "readinessProbe")) {
        if (c.spec().path(probe).has("exec")) {
          commands.add(DaemonSetPod.strings(c.spec().path(probe).path("exec").path("command")));
        }
      }
      for (List<String> command : commands) {
        if (image.which(imageName, command.get(0)).isEmpty()) {
          disagreements.add("container " + c.name() + ": command " + command.get(0) + " is not in the image (PATH "
              + String.join(":", image.path(imageName)) + ")");
        }
      }
      // What reads the environment: the entry script and the image's scripts it execs.
      Map<String, String> scripts = entryScripts(c.command().isEmpty() ? "" : c.command().get(0));
      for (DaemonSetPod.EnvEntry e : c.env()) {
        Pattern read = Pattern.compile("\\$\\{?" + Pattern.quote(e.name()) + "\\b");
        if (scripts.values().stream().noneMatch(text -> read.matcher(text).find())) {
          disagreements.add("container " + c.name() + ": env " + e.name() + " is read by none of " + scripts.keySet());
        }
      }
      // What names a path: its command and args, its environment's values, its scripts, the
      // base configuration it reads; or the runtime / an image program, by convention.
      List<String> references = new ArrayList<>(c.command());
      references.addAll(c.args());
      c.env().forEach(e -> references.add(e.spec().path("value").asText("")));
      if (c.mounts().stream().anyMatch(m -> pod.volume(m.volume()).has("configMap"))) {
        collectStrings(baseConfig, references);
      }
      for (DaemonSetPod.Mount m : c.mounts()) {
        String path = m.mountPath();
        boolean named = references.stream().anyMatch(r -> DaemonSetPod.under(r, path))
            || scripts.values().stream().anyMatch(text -> text.contains(path));
        boolean byConvention = USED_BY_CONVENTION.containsKey(path) && image.which(imageName, USED_BY_CONVENTION.get(path))
            .map(p -> image.read(imageName, p).contains(path)).orElse(false);
        boolean byRuntime = c.name().equals("agent") && GIVEN_BY_THE_RUNTIME.contains(path);
        if (!named && !byConvention && !byRuntime) {
          disagreements.add("container " + c.name() + ": mount " + path + " (volume " + m.volume()
              + ") is a path nothing in the image uses");
        }
      }
    }
    Set<String> mounted = new TreeSet<>();
    pod.containers().forEach(c -> c.mounts().forEach(m -> mounted.add(m.volume())));
    for (JsonNode v : pod.volumes()) {
      if (!mounted.contains(v.path("name").asText())) {
        disagreements.add("volume " + v.path("name").asText() + " is mounted by no container");
      }
    }
    return disagreements;
  }

  @Test
  @Order(2)
  void imageNodeInstallsThePluginStartsCharonJoinsTheLabAndServesPods() throws Exception {
    ObjectNode cluster = (ObjectNode) baseConfig().path("cluster");
    // Lab nodes 1 and 2 are members of the cluster the ConfigMap describes.
    String extra = LabHarness.JSON.writeValueAsString(Map.of("cluster", Map.of("name", cluster.path("name").asText(),
        "port", cluster.path("port").asInt(), "eventBusPort", cluster.path("eventBusPort").asInt())));
    lab.lab(Map.of("LAB_AGENT_CONFIG_EXTRA", extra), "up", "2");
    lab.lab("add-node", "--no-charon");
    Path nodeDir = lab.nodeDir(IMAGE_NODE);
    String node = LabHarness.nodeName(IMAGE_NODE);
    String hostIp = LabHarness.address(IMAGE_NODE);

    Map<String, Path> volumes = volumeSources(nodeDir);
    Path cniBin = volumes.get("/opt/cni/bin");
    List<String> started = new ArrayList<>();
    for (DaemonSetPod.Container c : pod.containers()) {
      Map<String, String> env = pod.environment(c, node, hostIp);
      if (c.name().equals("agent")) {
        // There is no Kubernetes API to list the Service's endpoints: the static member list
        // the render script takes instead (IPSEC_CNI_MEMBERS) names the lab's nodes.
        env.put("IPSEC_CNI_MEMBERS", String.join(",", LabHarness.address(1), LabHarness.address(2), hostIp));
      }
      List<String> args = runArguments(c, env, volumes, c.command());
      String name = PREFIX + node + "-" + c.name();
      if (c.init()) {
        LabHarness.Result r = image.runToEnd(name, args);
        assertEquals(0, r.exitCode(), "init container " + c.name() + " failed:\n" + r.stdout() + r.stderr());
      } else {
        image.start(name, args);
        started.add(name);
      }
    }

    // The init container put the image's plugin binary into the node's CNI bin dir.
    assertArrayEquals(Files.readAllBytes(lab.repoRoot().resolve("cni-gateway/target/ipsec-cni")),
        Files.readAllBytes(cniBin.resolve("ipsec-cni")), "the plugin in " + cniBin + " is the image's");
    assertTrue(Files.isExecutable(cniBin.resolve("bridge")), "the reference bridge plugin installed into " + cniBin);

    // charon answers: kubelet's liveness probe, and VICI on the socket the agent shares. The
    // probe's command runs from the image with the charon container's mounts and namespaces,
    // in a container of its own: podman exec, run inside a chroot (scripts/fresh-root, CI),
    // left the command in the chroot's mounts instead of the container's.
    DaemonSetPod.Container charonContainer = container("charon");
    List<String> probe = DaemonSetPod.strings(charonContainer.spec().path("livenessProbe").path("exec").path("command"));
    List<String> probeRun = runArguments(charonContainer, pod.environment(charonContainer, node, hostIp), volumes, probe);
    LabHarness.Result[] lastProbe = {null};
    awaitOrDump(Duration.ofSeconds(60), "charon's liveness probe " + probe, started, () -> {
      lastProbe[0] = image.runOnce(probeRun);
      return lastProbe[0].exitCode() == 0;
    }, () -> lastProbe[0] == null ? "the probe never ran"
        : "last probe: exit " + lastProbe[0].exitCode() + "\n" + lastProbe[0].stdout() + lastProbe[0].stderr());
    Path vici = onTheNode(container("charon"), baseConfig().path("charon").path("viciSocket").asText(), volumes);
    try (ViciSession session = ViciSession.connect(vici, Duration.ofSeconds(10))) {
      assertTrue(session.version().value("daemon").isPresent(), "charon's VICI version answer");
    }

    // The agent: the manifest's startup and readiness probes, on the node's address.
    DaemonSetPod.Container agent = container("agent");
    for (String probeName : List.of("startupProbe", "readinessProbe")) {
      String url = httpProbeUrl(agent, probeName, hostIp);
      awaitOrDump(UP, "agent " + probeName + " " + url, started,
          () -> lab.exec(String.valueOf(IMAGE_NODE), "curl", "-s", "-f", "-o", "/dev/null", "-m", "3", url).exitCode() == 0);
    }
    for (int i = 1; i <= IMAGE_NODE; i++) {
      lab.awaitState(i, UP, "3 members", s -> LabHarness.members(s).size() == IMAGE_NODE);
    }

    // The conflist is where the runtime reads it: the node's /etc/cni/net.d.
    Path conflist = volumes.get("/etc/cni/net.d").resolve("10-ipsec-cni.conflist");
    awaitOrDump(UP, "the conflist " + conflist, started, () -> Files.isRegularFile(conflist));
    // Every plugin it chains must be in the node's CNI bin dir: the node may have none of its own.
    for (JsonNode plugin : LabHarness.JSON.readTree(conflist.toFile()).path("plugins")) {
      String type = plugin.path("type").asText();
      assertTrue(Files.isExecutable(cniBin.resolve(type)), "the conflist chains plugin " + type
          + ", which the init container did not put into the node's CNI bin dir " + cniBin);
    }

    // Tunnels: the lab nodes to the image node and the image node's charon to both.
    for (int peer : List.of(1, 2)) {
      LabHarness.await(UP, "node" + peer + "'s tunnel to node3", () -> TunnelLab.tunnelUp(lab, peer, IMAGE_NODE));
      LabHarness.await(UP, "node3's tunnel to node" + peer, () -> established(vici).contains("peer-node" + peer));
    }

    // A pod on the image node, added as the node's runtime adds it: the plugin from the node's
    // CNI bin dir, the agent's socket where the conflist says, seen from the host.
    Path runtimeConflist = work.resolve("node3-runtime.conflist");
    Files.writeString(runtimeConflist, onTheHost(LabHarness.JSON.readTree(conflist.toFile()), agent, volumes).toString());
    String cniPath = cniBin + ":" + agent.mounts().stream().filter(m -> m.volume().equals(volumeOfHostPath("/opt/cni/bin")))
        .findFirst().orElseThrow().mountPath();
    lab.lab(Map.of("LAB_CNI_PATH", cniPath), "pod", "add", String.valueOf(IMAGE_NODE), "im3", "--conf",
        runtimeConflist.toString());
    lab.lab("pod", "add", "1", "im1");
    String local = TunnelLab.podAddress(lab, "im3");
    String remote = TunnelLab.podAddress(lab, "im1");
    assertTrue(local.startsWith("10.128."), "pod on the image node got " + local);
    LabHarness.await(UP, "pod im3 (" + local + ", image node) pings im1 (" + remote + ", node1)",
        () -> TunnelLab.pingOnce(lab, "pod-im3", remote));
    assertTrue(TunnelLab.pingOnce(lab, "pod-im1", local), "im1 pings im3 back");
    assertEquals("0", lab.lab("leaks").stdout().strip(), "pod packets reached the underlay's router in clear");
    lab.lab("pod", "del", "im3");
    lab.lab("pod", "del", "im1");
  }

  // ------------------------------------------------------------------ the pod on podman

  private List<String> runArguments(DaemonSetPod.Container c, Map<String, String> env, Map<String, Path> volumes,
                                    List<String> command) {
    JsonNode spec = pod.podSpec();
    assertTrue(spec.path("hostNetwork").asBoolean(false), "the test runs host-network pods only (the DaemonSet's is)");
    List<String> args = new ArrayList<>(List.of("--pull", "never",
        // podman raises these limits by default, which root here may not (no CAP_SYS_RESOURCE)
        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
        "--network", "ns:/run/netns/" + PREFIX + "node" + IMAGE_NODE));
    if (spec.path("hostPID").asBoolean(false)) {
      args.addAll(List.of("--pid", "host"));
    }
    if (c.privileged()) {
      args.add("--privileged");
    }
    env.forEach((k, v) -> args.addAll(List.of("-e", k + "=" + v)));
    for (DaemonSetPod.Mount m : c.mounts()) {
      JsonNode v = pod.volume(m.volume());
      Path source = v.has("hostPath") ? volumes.get(v.path("hostPath").path("path").asText()) : volumes.get("volume:" + m.volume());
      List<String> options = new ArrayList<>();
      if (m.readOnly()) {
        options.add("ro");
      }
      switch (m.propagation()) {
        case "None" -> { }
        case "HostToContainer" -> options.add("rslave");
        case "Bidirectional" -> options.add("rshared");
        default -> throw new AssertionError("container " + c.name() + ": mountPropagation " + m.propagation());
      }
      args.addAll(List.of("-v", source + ":" + m.mountPath() + (options.isEmpty() ? "" : ":" + String.join(",", options))));
    }
    if (!command.isEmpty()) {
      args.addAll(List.of("--entrypoint", LabHarness.JSON.valueToTree(command).toString()));
    }
    args.add(imageName);
    if (command == c.command()) {
      args.addAll(c.args());
    }
    return args;
  }

  /**
   * Every volume's source on the image node: hostPaths through {@link #HOST_PATHS} (made as
   * their type says), configMap / secret / emptyDir volumes written under the work directory
   * (keys {@code volume:NAME}). A hostPath the table lacks fails the test, named.
   */
  private Map<String, Path> volumeSources(Path nodeDir) throws IOException {
    Map<String, Path> out = new LinkedHashMap<>();
    List<String> unmapped = new ArrayList<>();
    for (JsonNode v : pod.volumes()) {
      String name = v.path("name").asText();
      if (v.has("hostPath")) {
        String path = v.path("hostPath").path("path").asText();
        String place = HOST_PATHS.get(path);
        if (place == null) {
          unmapped.add(path + " (volume " + name + ")");
          continue;
        }
        Path source = Path.of(place.replace("NODE", nodeDir.toString()));
        String type = v.path("hostPath").path("type").asText("");
        switch (type) {
          case "DirectoryOrCreate" -> Files.createDirectories(source);
          case "FileOrCreate" -> {
            if (!Files.exists(source)) {
              Files.createDirectories(source.getParent());
              Files.createFile(source);
            }
          }
          case "Directory" -> assertTrue(Files.isDirectory(source), "hostPath " + path + " (type Directory): no " + source);
          case "File" -> assertTrue(Files.isRegularFile(source), "hostPath " + path + " (type File): no " + source);
          default -> throw new AssertionError("hostPath " + path + ": type '" + type + "' is not one the test knows");
        }
        out.put(path, source);
      } else {
        Path dir = work.resolve("volumes").resolve(name);
        if (v.has("configMap") && v.path("configMap").path("name").asText().equals(configMapName())) {
          pod.configMap(configMapName()).put("agent.json", baseConfig().toPrettyString());
        }
        if (v.has("secret")) {
          // The manifest's value is a placeholder an operator replaces: the lab's cluster secret.
          pod.secret(v.path("secret").path("secretName").asText()).replaceAll((k, value) -> labSecret());
        }
        out.put("volume:" + name, pod.materialize(v, dir));
      }
    }
    assertEquals(List.of(), unmapped, "hostPath volumes of the DaemonSet with no place on the lab node");
    return out;
  }

  /** The ConfigMap's base configuration, with the one setting this machine needs changed. */
  private ObjectNode baseConfig() {
    try {
      ObjectNode config = (ObjectNode) LabHarness.JSON.readTree(pod.configMap(configMapName()).path("agent.json").asText());
      // This kernel has no ESP (docs/ci.md): userspace ESP, as on every lab node.
      ((ObjectNode) config.path("charon")).put("datapath", "libipsec");
      return config;
    } catch (IOException e) {
      throw new AssertionError("the ConfigMap's agent.json is not JSON", e);
    }
  }

  private String configMapName() {
    for (JsonNode v : pod.volumes()) {
      if (v.has("configMap") && v.path("configMap").path("items").findValuesAsText("key").contains("agent.json")) {
        return v.path("configMap").path("name").asText();
      }
    }
    throw new AssertionError("no configMap volume of the DaemonSet carries agent.json");
  }

  private String labSecret() {
    try {
      return Files.readString(lab.labDir().resolve("cluster-secret")).strip();
    } catch (IOException e) {
      throw new AssertionError("no lab cluster secret", e);
    }
  }

  private DaemonSetPod.Container container(String name) {
    return pod.containers().stream().filter(c -> c.name().equals(name)).findFirst()
        .orElseThrow(() -> new AssertionError("the DaemonSet has no container " + name));
  }

  private String volumeOfHostPath(String hostPath) {
    return pod.volumes().stream().filter(v -> v.path("hostPath").path("path").asText().equals(hostPath))
        .map(v -> v.path("name").asText()).findFirst().orElseThrow();
  }

  /** The probe's URL on the node: kubelet probes a host-network pod on its host IP. */
  private static String httpProbeUrl(DaemonSetPod.Container c, String probe, String hostIp) {
    JsonNode get = c.spec().path(probe).path("httpGet");
    assertTrue(get.has("path"), "container " + c.name() + " has no httpGet " + probe);
    String port = get.path("port").asText();
    if (!port.matches("\\d+")) {
      port = namedPort(c, port);
    }
    return "http://" + hostIp + ":" + port + get.path("path").asText();
  }

  private static String namedPort(DaemonSetPod.Container c, String name) {
    for (JsonNode p : c.spec().path("ports")) {
      if (p.path("name").asText().equals(name)) {
        return p.path("containerPort").asText();
      }
    }
    throw new AssertionError("container " + c.name() + " names port " + name + " in a probe but declares none by that name");
  }

  /** Where a path inside the container is on the image node (its mount's source): for a socket on an emptyDir or a hostPath. */
  private Path onTheNode(DaemonSetPod.Container c, String inContainer, Map<String, Path> volumes) {
    DaemonSetPod.Mount mount = c.mounts().stream().filter(m -> DaemonSetPod.under(inContainer, m.mountPath()))
        .max(java.util.Comparator.comparingInt(m -> m.mountPath().length()))
        .orElseThrow(() -> new AssertionError("container " + c.name() + ": " + inContainer + " is on none of its mounts"));
    JsonNode v = pod.volume(mount.volume());
    Path source = v.has("hostPath") ? volumes.get(v.path("hostPath").path("path").asText()) : volumes.get("volume:" + mount.volume());
    String rest = inContainer.substring(mount.mountPath().length()).replaceFirst("^/", "");
    return rest.isEmpty() ? source : source.resolve(rest);
  }

  /**
   * The conflist as the runtime on the node reads it: a path the agent wrote (its view, inside
   * its container) is where the node has it, which is only possible on a hostPath mount.
   */
  private JsonNode onTheHost(JsonNode conflist, DaemonSetPod.Container agent, Map<String, Path> volumes) {
    JsonNode copy = conflist.deepCopy();
    for (JsonNode plugin : copy.path("plugins")) {
      if (plugin.has("agentSocket")) {
        String inContainer = plugin.path("agentSocket").asText();
        String onHost = pod.hostPathOf(agent, inContainer).orElseThrow(() -> new AssertionError("the conflist's agentSocket "
            + inContainer + " is on no hostPath mount of the agent: the plugin binary on the node cannot reach it"));
        String root = HOST_PATHS.keySet().stream().filter(h -> DaemonSetPod.under(onHost, h)).findFirst().orElseThrow();
        ((ObjectNode) plugin).put("agentSocket", volumes.get(root) + onHost.substring(root.length()));
      }
    }
    return copy;
  }

  // ------------------------------------------------------------------ image inspection

  /** The entry command's script and the image's scripts it execs, by path in the image, with their text. */
  private Map<String, String> entryScripts(String command) {
    Map<String, String> out = new LinkedHashMap<>();
    List<String> queue = new ArrayList<>(List.of(command));
    Pattern exec = Pattern.compile("(?m)^\\s*exec\\s+([A-Za-z0-9_./-]+)");
    while (!queue.isEmpty()) {
      Optional<String> path = image.which(imageName, queue.remove(0));
      if (path.isEmpty() || out.containsKey(path.get())) {
        continue;
      }
      String text = image.read(imageName, path.get());
      if (!text.startsWith("#!")) {
        continue;
      }
      out.put(path.get(), text);
      Matcher m = exec.matcher(text);
      while (m.find()) {
        queue.add(m.group(1));
      }
    }
    return out;
  }

  private static void collectStrings(JsonNode node, List<String> into) {
    if (node.isTextual()) {
      into.add(node.asText());
    }
    node.forEach(child -> collectStrings(child, into));
  }

  // ------------------------------------------------------------------ waiting

  private static Set<String> established(Path vici) {
    Set<String> out = new TreeSet<>();
    try (ViciSession session = ViciSession.connect(vici, Duration.ofSeconds(10))) {
      for (ViciMessage event : session.listSas()) {
        event.sections().forEach((conn, ike) -> {
          boolean installed = ike.section("child-sas").map(ViciMessage::sections).orElse(Map.of()).values().stream()
              .anyMatch(child -> "INSTALLED".equals(child.value("state").orElse("")));
          if ("ESTABLISHED".equals(ike.value("state").orElse("")) && installed) {
            out.add(conn);
          }
        });
      }
    } catch (IOException e) {
      return Set.of();
    }
    return out;
  }

  /** Polls; on failure the message carries the containers' last log lines. */
  private void awaitOrDump(Duration deadline, String what, List<String> containers, java.util.function.BooleanSupplier condition) {
    awaitOrDump(deadline, what, containers, condition, () -> "");
  }

  private void awaitOrDump(Duration deadline, String what, List<String> containers, java.util.function.BooleanSupplier condition,
                           java.util.function.Supplier<String> lastSeen) {
    try {
      LabHarness.await(deadline, what, () -> {
        for (String c : containers) {
          if (!image.running(c)) {
            throw new AssertionError("container " + c + " exited while waiting for " + what);
          }
        }
        return condition.getAsBoolean();
      });
    } catch (AssertionError e) {
      StringBuilder logs = new StringBuilder(e.getMessage()).append('\n').append(lastSeen.get());
      containers.forEach(c -> logs.append('\n').append(image.logs(c)));
      throw new AssertionError(logs.toString(), e);
    }
  }
}

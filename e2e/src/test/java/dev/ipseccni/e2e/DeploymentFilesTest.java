package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.ipseccni.agent.AgentConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The three ways to deploy (k8s/, docker-compose.yml, Vagrantfile) and the image build,
 * checked without a cluster, a Docker engine or a hypervisor: every manifest has what the
 * API server requires and what the agent needs, the configs they render are configs the
 * agent accepts, and the external validators that work offline agree. A test whose
 * validator is not installed is skipped, saying which package provides it.
 */
class DeploymentFilesTest {

  private static final Path ROOT = Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
  private static final Path K8S = ROOT.resolve("k8s");
  private static final ObjectMapper YAML = new YAMLMapper();
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern DNS_LABEL = Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  private static final Set<String> CLUSTER_SCOPED = Set.of("Namespace", "ClusterRole", "ClusterRoleBinding");
  private static final Set<String> READ_VERBS = Set.of("get", "list", "watch");
  private static final String AGENT_IMAGE_SCRIPTS = "k8s/image";

  // ---- Kubernetes -------------------------------------------------------------------

  @Test
  void everyManifestHasTheFieldsKubernetesRequires() throws IOException {
    List<JsonNode> objects = manifests();
    assertFalse(objects.isEmpty(), "no manifests under " + K8S);
    Set<String> seen = new HashSet<>();
    for (JsonNode object : objects) {
      String kind = text(object, "kind");
      String name = text(object.path("metadata"), "name");
      assertTrue(text(object, "apiVersion").matches("([a-z0-9.]+/)?v[0-9]+((alpha|beta)[0-9]+)?"),
          kind + "/" + name + ": apiVersion " + object.path("apiVersion"));
      assertTrue(DNS_LABEL.matcher(name).matches() && name.length() <= 253, kind + ": bad name '" + name + "'");
      if (!CLUSTER_SCOPED.contains(kind)) {
        assertEquals("ipsec-cni", object.path("metadata").path("namespace").asText(),
            kind + "/" + name + " must be in the ipsec-cni namespace");
      }
      assertTrue(seen.add(kind + "/" + name), "duplicate " + kind + "/" + name);
    }
    for (String kind : List.of("Namespace", "ServiceAccount", "Role", "RoleBinding", "Service", "Secret",
        "ConfigMap", "DaemonSet")) {
      assertTrue(objects.stream().anyMatch(o -> o.path("kind").asText().equals(kind)), "no " + kind + " in k8s/");
    }
  }

  @Test
  void kustomizationListsEveryManifest() throws IOException {
    JsonNode kustomization = YAML.readTree(K8S.resolve("kustomization.yaml").toFile());
    Set<String> listed = new TreeSet<>();
    kustomization.path("resources").forEach(r -> listed.add(r.asText()));
    Set<String> present = new TreeSet<>();
    for (Path file : manifestFiles()) {
      present.add(file.getFileName().toString());
    }
    assertEquals(present, listed, "kustomization.yaml resources vs. the manifests in k8s/");
  }

  @Test
  void daemonSetRunsPrivilegedOnTheHostNetworkOfEveryNode() throws IOException {
    JsonNode ds = one("DaemonSet");
    JsonNode template = ds.path("spec").path("template");
    JsonNode pod = template.path("spec");
    JsonNode selector = ds.path("spec").path("selector").path("matchLabels");
    assertFalse(selector.isEmpty(), "DaemonSet needs spec.selector.matchLabels");
    selector.fields().forEachRemaining(e -> assertEquals(e.getValue(), template.path("metadata").path("labels")
        .path(e.getKey()), "the template's labels must match the selector on " + e.getKey()));

    assertTrue(pod.path("hostNetwork").asBoolean(), "hostNetwork");
    assertTrue(pod.path("hostPID").asBoolean(), "hostPID (CNI_NETNS may be /proc/PID/ns/net)");
    assertEquals("ClusterFirstWithHostNet", pod.path("dnsPolicy").asText());
    boolean everyTaint = false;
    for (JsonNode toleration : pod.path("tolerations")) {
      everyTaint |= toleration.path("operator").asText().equals("Exists") && !toleration.has("key")
          && !toleration.has("effect");
    }
    assertTrue(everyTaint, "a toleration with operator Exists and no key, so it runs on every node");

    Map<String, JsonNode> containers = new HashMap<>();
    pod.path("containers").forEach(c -> containers.put(c.path("name").asText(), c));
    assertEquals(Set.of("charon", "agent"), containers.keySet());
    Set<String> volumes = new HashSet<>();
    pod.path("volumes").forEach(v -> volumes.add(text(v, "name")));
    List<JsonNode> all = new ArrayList<>(containers.values());
    pod.path("initContainers").forEach(all::add);
    for (JsonNode container : all) {
      String name = text(container, "name");
      text(container, "image");
      for (String kind : List.of("requests", "limits")) {
        for (String resource : List.of("cpu", "memory")) {
          assertFalse(container.path("resources").path(kind).path(resource).asText().isEmpty(),
              name + ": resources." + kind + "." + resource);
        }
      }
      for (JsonNode mount : container.path("volumeMounts")) {
        assertTrue(volumes.contains(text(mount, "name")), name + " mounts undeclared volume " + mount.path("name"));
        text(mount, "mountPath");
      }
    }
    for (String name : List.of("charon", "agent")) {
      assertTrue(containers.get(name).path("securityContext").path("privileged").asBoolean(), name + " privileged");
    }
  }

  @Test
  void agentProbesAreHealthzAndReadyzOnTheApiPort() throws IOException {
    JsonNode agent = container("agent");
    int apiPort = baseConfig().path("api").path("port").asInt(9750);
    assertEquals("/healthz", agent.path("livenessProbe").path("httpGet").path("path").asText());
    assertEquals("/readyz", agent.path("readinessProbe").path("httpGet").path("path").asText());
    for (String probe : List.of("livenessProbe", "readinessProbe", "startupProbe")) {
      assertEquals(apiPort, agent.path(probe).path("httpGet").path("port").asInt(), probe + " port");
    }
    Set<String> downward = new HashSet<>();
    agent.path("env").forEach(e -> downward.add(e.path("valueFrom").path("fieldRef").path("fieldPath").asText()));
    assertTrue(downward.containsAll(Set.of("spec.nodeName", "status.hostIP")),
        "NODE_NAME and HOST_IP from the downward API");
  }

  @Test
  void initStepInstallsThePluginIntoTheHostsCniBin() throws IOException {
    JsonNode pod = one("DaemonSet").path("spec").path("template").path("spec");
    JsonNode init = pod.path("initContainers").path(0);
    assertEquals("ipsec-cni-install-plugin", init.path("command").path(0).asText());
    assertTrue(Files.isExecutable(ROOT.resolve(AGENT_IMAGE_SCRIPTS).resolve("ipsec-cni-install-plugin")));
    String mountPath = mountOf(init, "cni-bin");
    assertEquals("/opt/cni/bin", hostPathOf(pod, "cni-bin"));
    String target = envOf(init, "CNI_BIN_DIR");
    assertEquals(mountPath, target, "the script installs into the mounted host directory");
  }

  @Test
  void agentSeesTheHostPathsItsConfigNames() throws IOException {
    JsonNode pod = one("DaemonSet").path("spec").path("template").path("spec");
    JsonNode agent = container("agent");
    JsonNode base = baseConfig();
    // The plugin binary on the host reaches the socket, the runtime reads the conflist.
    String stateDir = base.path("stateDir").asText();
    assertEquals(stateDir, hostPathOf(pod, volumeMountedAt(agent, stateDir)));
    assertTrue(base.path("cniSocket").asText().startsWith(stateDir + "/"), "cniSocket inside the host stateDir");
    String confDir = base.path("cniConfDir").asText();
    assertEquals(confDir, hostPathOf(pod, volumeMountedAt(agent, confDir)));
    assertEquals("/opt/cni/bin", hostPathOf(pod, volumeMountedAt(agent, "/opt/cni/bin")));
    assertEquals("HostToContainer", mountNamed(agent, volumeMountedAt(agent, "/run/netns")).path("mountPropagation")
        .asText(), "pod namespaces created later must appear in the agent");
    // charon's VICI socket lives in a volume both containers mount at the same place.
    String viciDir = Path.of(base.path("charon").path("viciSocket").asText()).getParent().toString();
    assertEquals(volumeMountedAt(agent, viciDir), volumeMountedAt(container("charon"), viciDir));
    // The secret file is the Secret's key, mounted owner-only.
    Path secretFile = Path.of(base.path("secretFile").asText());
    String secretVolume = volumeMountedAt(agent, secretFile.getParent().toString());
    JsonNode secret = volumeNamed(pod, secretVolume).path("secret");
    assertEquals(text(one("Secret").path("metadata"), "name"), secret.path("secretName").asText());
    assertTrue(one("Secret").path("stringData").has(secretFile.getFileName().toString()), "Secret key");
    assertEquals(0, secret.path("defaultMode").asInt() & 0077, "secret readable by its owner only");
    // IKE certificates by default: the node's key, certificate and CA on the host, the denied list from the ConfigMap.
    JsonNode charon = base.path("charon");
    assertEquals("certificate", charon.path("auth").asText());
    for (String key : List.of("certificate", "privateKey", "caCertificate")) {
      String dirOf = Path.of(charon.path(key).asText()).getParent().toString();
      assertEquals("/etc/ipsec-cni/pki", hostPathOf(pod, volumeMountedAt(agent, dirOf)), key + " from the host");
    }
    Path denied = Path.of(charon.path("deniedNodesFile").asText());
    assertEquals("/etc/ipsec-cni/base", denied.getParent().toString());
    assertTrue(one("ConfigMap").path("data").has(denied.getFileName().toString()), "denied-nodes in the ConfigMap");
    assertEquals(text(one("ServiceAccount").path("metadata"), "name"), pod.path("serviceAccountName").asText());
    assertEquals(text(one("ConfigMap").path("metadata"), "name"),
        volumeNamed(pod, volumeMountedAt(agent, "/etc/ipsec-cni/base")).path("configMap").path("name").asText());
  }

  @Test
  void rbacOnlyReadsEndpointSlicesOfItsNamespace() throws IOException {
    for (JsonNode object : manifests()) {
      assertFalse(Set.of("ClusterRole", "ClusterRoleBinding").contains(object.path("kind").asText()),
          "no cluster-wide rights");
    }
    for (JsonNode rule : one("Role").path("rules")) {
      rule.path("verbs").forEach(v -> assertTrue(READ_VERBS.contains(v.asText()), "verb " + v));
      rule.path("resources").forEach(r -> assertTrue(Set.of("endpointslices", "endpoints").contains(r.asText()),
          "resource " + r));
    }
    JsonNode binding = one("RoleBinding");
    assertEquals(text(one("Role").path("metadata"), "name"), binding.path("roleRef").path("name").asText());
    JsonNode subject = binding.path("subjects").path(0);
    assertEquals("ServiceAccount", subject.path("kind").asText());
    assertEquals(text(one("ServiceAccount").path("metadata"), "name"), subject.path("name").asText());
  }

  @Test
  void headlessServiceListsAgentsBeforeTheyAreReady() throws IOException {
    JsonNode service = one("Service").path("spec");
    assertEquals("None", service.path("clusterIP").asText());
    assertTrue(service.path("publishNotReadyAddresses").asBoolean(),
        "agents become ready only after joining, which needs this list");
    assertEquals(one("DaemonSet").path("spec").path("selector").path("matchLabels"), service.path("selector"));
    assertEquals(text(one("Service").path("metadata"), "name"), envOf(container("agent"), "IPSEC_CNI_SERVICE"));
  }

  @Test
  void committedSecretIsAPlaceholderTheAgentRefuses() throws IOException {
    String value = one("Secret").path("stringData").path("cluster-secret").asText();
    assertTrue(value.getBytes(StandardCharsets.UTF_8).length < 32,
        "a real secret must never be committed; the placeholder must stay below the agent's 32-byte minimum");
  }

  @Test
  void kustomizeBuildsTheManifestsOffline() throws Exception {
    assertTrue(onPath("kubectl"), "kubectl not installed (package kubernetes-client, scripts/install-deps)");
    Result result = run(ROOT, "kubectl", "kustomize", K8S.toString());
    assertEquals(0, result.exit, result.output);
    List<JsonNode> built = readAll(result.output);
    assertEquals(manifests().size(), built.size(), "kustomize kept every object");
  }

  // ---- configs the agent accepts -------------------------------------------------------

  @Test
  void everyBaseConfigRendersToAConfigTheAgentAccepts(@TempDir Path tmp) throws Exception {
    assertTrue(onPath("jq"), "jq not installed (package jq, scripts/install-deps)");
    Map<String, JsonNode> bases = new HashMap<>();
    bases.put("k8s", baseConfig());
    bases.put("compose", JSON.readTree(ROOT.resolve("compose/agent-base.json").toFile()));
    bases.put("vagrant", JSON.readTree(ROOT.resolve("vagrant/agent-base.json").toFile()));
    for (Map.Entry<String, JsonNode> entry : bases.entrySet()) {
      Path base = tmp.resolve(entry.getKey() + "-base.json");
      Path out = tmp.resolve(entry.getKey() + "/agent.json");
      JSON.writeValue(base.toFile(), entry.getValue());
      Result result = run(ROOT, List.of("sh", ROOT.resolve(AGENT_IMAGE_SCRIPTS + "/ipsec-cni-render-config").toString()),
          Map.of("NODE_NAME", "node2", "HOST_IP", "192.0.2.12", "IPSEC_CNI_MEMBERS", "192.0.2.11, 192.0.2.13",
              "IPSEC_CNI_BASE_CONFIG", base.toString(), "IPSEC_CNI_CONFIG", out.toString()));
      assertEquals(0, result.exit, entry.getKey() + ": " + result.output);
      AgentConfig config = AgentConfig.load(out);
      assertEquals("node2", config.nodeName());
      assertEquals("192.0.2.12", config.underlayAddress());
      assertEquals(List.of("192.0.2.11:5701", "192.0.2.12:5701", "192.0.2.13:5701"), config.cluster().members());
      assertEquals("192.0.2.12", config.api().address());
      assertTrue(config.cluster().expectedMembers() >= 2, entry.getKey() + ": expectedMembers");
    }
  }

  @Test
  void aBaseConfigWithDnsDiscoveryRendersNoMemberListAndAsksNoApi(@TempDir Path tmp) throws Exception {
    assertTrue(onPath("jq"), "jq not installed (package jq, scripts/install-deps)");
    ObjectNode base = (ObjectNode) baseConfig().deepCopy();
    ((ObjectNode) base.path("cluster")).put("expectedMembers", 3)
        .putObject("discovery").put("dns", "ipsec-cni.ipsec-cni.svc.cluster.local");
    Path baseFile = tmp.resolve("base.json");
    Path out = tmp.resolve("out/agent.json");
    JSON.writeValue(baseFile.toFile(), base);
    // no IPSEC_CNI_MEMBERS and no Kubernetes service-account: an API call would fail
    Result result = run(ROOT, List.of("sh", ROOT.resolve(AGENT_IMAGE_SCRIPTS + "/ipsec-cni-render-config").toString()),
        Map.of("NODE_NAME", "node2", "HOST_IP", "192.0.2.12", "IPSEC_CNI_BASE_CONFIG", baseFile.toString(),
            "IPSEC_CNI_CONFIG", out.toString()));
    assertEquals(0, result.exit, result.output);
    AgentConfig config = AgentConfig.load(out);
    assertEquals("node2", config.nodeName());
    assertEquals("192.0.2.12", config.underlayAddress());
    assertEquals(java.util.Optional.of("ipsec-cni.ipsec-cni.svc.cluster.local"), config.cluster().discoveryDns());
    assertEquals(3, config.cluster().expectedMembers());
  }

  @Test
  void charonIsStartedWithTheDatapathOfTheAgentConfig(@TempDir Path tmp) throws Exception {
    assertTrue(onPath("jq"), "jq not installed (package jq, scripts/install-deps)");
    for (String datapath : List.of("kernel", "libipsec")) {
      ObjectNode base = (ObjectNode) baseConfig().deepCopy();
      ((ObjectNode) base.path("charon")).put("datapath", datapath)
          .put("viciSocket", tmp.resolve("run/charon.vici").toString());
      Path baseFile = tmp.resolve("base.json");
      JSON.writeValue(baseFile.toFile(), base);
      Path conf = tmp.resolve(datapath + ".conf");
      Result result = run(tmp, List.of("sh", ROOT.resolve(AGENT_IMAGE_SCRIPTS + "/ipsec-cni-start-charon").toString()),
          Map.of("IPSEC_CNI_BASE_CONFIG", baseFile.toString(), "STRONGSWAN_CONF", conf.toString(), "CHARON", "true"));
      assertEquals(0, result.exit, result.output);
      String text = Files.readString(conf);
      assertEquals(datapath.equals("libipsec"), text.contains("kernel-libipsec"), text);
      assertTrue(text.contains("socket = unix://" + tmp.resolve("run/charon.vici")), text);
    }
  }

  // ---- image, compose, Vagrant ---------------------------------------------------------------

  @Test
  void containerfileCopiesWhatTheBuildProduces() throws IOException {
    List<String> lines = logicalLines(ROOT.resolve("Containerfile"));
    assertTrue(lines.stream().anyMatch(l -> l.matches("FROM debian:12-slim")), "based on debian:12-slim");
    String install = lines.stream().filter(l -> l.contains("apt-get install")).findFirst().orElse("");
    for (String pkg : List.of("strongswan-charon", "strongswan-swanctl", "libstrongswan-standard-plugins",
        "libcharon-extra-plugins", "iptables", "nftables", "iproute2", "openjdk-17-jre-headless", "jq", "curl")) {
      assertTrue(install.matches(".*\\s" + Pattern.quote(pkg) + "(\\s.*|$)"), "image installs " + pkg);
    }
    int copies = 0;
    for (String line : lines) {
      if (!line.startsWith("COPY ")) {
        continue;
      }
      String[] words = line.substring(5).trim().split("\\s+");
      for (int i = 0; i < words.length - 1; i++) {
        assertTrue(globMatches(words[i]), "COPY source " + words[i] + " is not in the tree (build it first)");
        copies++;
      }
    }
    assertTrue(copies >= 5, "jar, launcher, plugin binaries and node scripts are copied");
    for (String command : List.of("ipsec-cni-install-plugin", "ipsec-cni-start-charon", "ipsec-cni-render-config")) {
      assertTrue(lines.stream().anyMatch(l -> l.startsWith("COPY ") && l.contains("/" + command)),
          "the image carries " + command);
    }
  }

  @Test
  void composeHasThreePrivilegedNodesAndAKraftBroker() throws IOException {
    JsonNode compose = YAML.readTree(ROOT.resolve("docker-compose.yml").toFile());
    JsonNode services = compose.path("services");
    Set<String> addresses = new TreeSet<>();
    for (String node : List.of("node1", "node2", "node3")) {
      JsonNode service = services.path(node);
      assertTrue(service.path("privileged").asBoolean(), node + " privileged");
      String address = service.path("networks").path("underlay").path("ipv4_address").asText();
      assertEquals(address, service.path("environment").path("HOST_IP").asText(), node + " HOST_IP");
      addresses.add(address);
      for (JsonNode volume : service.path("volumes")) {
        String source = volume.asText().split(":")[0];
        if (source.startsWith("./")) {
          assertTrue(Files.exists(ROOT.resolve(source)), node + " mounts missing " + source);
        }
      }
    }
    assertEquals(3, addresses.size(), "distinct node addresses");
    for (String node : List.of("node1", "node2", "node3")) {
      Set<String> members = new TreeSet<>(List.of(services.path(node).path("environment").path("IPSEC_CNI_MEMBERS")
          .asText().split(",")));
      assertEquals(addresses, members, node + " members");
    }
    JsonNode kafka = services.path("kafka").path("environment");
    assertTrue(kafka.path("KAFKA_PROCESS_ROLES").asText().contains("controller"), "KRaft broker+controller");
    assertEquals("1", kafka.path("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR").asText());
  }

  @Test
  void composeFileIsValidForDockerCompose() throws Exception {
    assertTrue(onPath("docker-compose"),
        "docker-compose not installed (package docker-compose, scripts/install-deps)");
    Result result = run(ROOT, "docker-compose", "-f", ROOT.resolve("docker-compose.yml").toString(), "config", "-q");
    assertEquals(0, result.exit, result.output);
  }

  @Test
  void vagrantfileDefinesAMasterAndThreeNodes() throws IOException {
    String vagrantfile = Files.readString(ROOT.resolve("Vagrantfile"));
    Matcher names = Pattern.compile("name: \"(kube-[a-z0-9]+)\"").matcher(vagrantfile);
    List<String> machines = new ArrayList<>();
    while (names.find()) {
      machines.add(names.group(1));
    }
    assertEquals(List.of("kube-master", "kube-node1", "kube-node2", "kube-node3"), machines);
    for (String script : List.of("provision-common.sh", "provision-master.sh", "provision-node.sh")) {
      assertTrue(vagrantfile.contains("vagrant/" + script), "Vagrantfile runs " + script);
      assertTrue(Files.isRegularFile(ROOT.resolve("vagrant").resolve(script)), script);
    }
  }

  @Test
  void vagrantfileIsValidRuby() throws Exception {
    assertTrue(onPath("ruby"), "ruby not installed (package ruby, scripts/install-deps)");
    Result result = run(ROOT, "ruby", "-c", ROOT.resolve("Vagrantfile").toString());
    assertEquals(0, result.exit, result.output);
  }

  @Test
  void vagrantValidateAcceptsTheVagrantfile(@TempDir Path tmp) throws Exception {
    assertTrue(onPath("vagrant"), "vagrant not installed (package vagrant, scripts/install-deps)");
    // A copy, so that the .vagrant directory vagrant creates stays out of the work tree.
    // It checks that each provisioning script exists, so they are copied along.
    Files.copy(ROOT.resolve("Vagrantfile"), tmp.resolve("Vagrantfile"));
    Files.createDirectories(tmp.resolve("vagrant"));
    try (Stream<Path> files = Files.list(ROOT.resolve("vagrant"))) {
      for (Path file : files.filter(Files::isRegularFile).toList()) {
        Files.copy(file, tmp.resolve("vagrant").resolve(file.getFileName()));
      }
    }
    Result result = run(tmp, List.of("vagrant", "validate", "--ignore-provider"), Map.of("VAGRANT_CHECKPOINT_DISABLE", "1"));
    assertEquals(0, result.exit, result.output);
  }

  @Test
  void shellScriptsPassShellcheck() throws Exception {
    assertTrue(onPath("shellcheck"), "shellcheck not installed (package shellcheck, scripts/install-deps)");
    List<String> command = new ArrayList<>(List.of("shellcheck", "--severity=style"));
    try (Stream<Path> scripts = Stream.concat(Files.list(ROOT.resolve(AGENT_IMAGE_SCRIPTS)),
        Files.list(ROOT.resolve("vagrant")).filter(p -> p.toString().endsWith(".sh")))) {
      scripts.sorted().forEach(p -> command.add(p.toString()));
    }
    assertTrue(command.size() >= 2 + 7, "the node scripts and the provisioning scripts: " + command);
    Result result = run(ROOT, command, Map.of());
    assertEquals(0, result.exit, result.output);
  }

  // ---- helpers ------------------------------------------------------------------

  private static List<Path> manifestFiles() throws IOException {
    try (Stream<Path> files = Files.list(K8S)) {
      return files.filter(p -> p.toString().endsWith(".yaml"))
          .filter(p -> !p.getFileName().toString().equals("kustomization.yaml")).sorted().toList();
    }
  }

  private static List<JsonNode> manifests() throws IOException {
    List<JsonNode> objects = new ArrayList<>();
    for (Path file : manifestFiles()) {
      List<JsonNode> documents = readAll(Files.readString(file));
      assertFalse(documents.isEmpty(), file + " holds no object");
      objects.addAll(documents);
    }
    return objects;
  }

  private static List<JsonNode> readAll(String yaml) throws IOException {
    List<JsonNode> documents = new ArrayList<>();
    try (var parser = new YAMLFactory().createParser(yaml)) {
      var it = YAML.readValues(parser, JsonNode.class);
      while (it.hasNext()) {
        JsonNode document = it.next();
        if (document != null && !document.isNull() && !document.isMissingNode()) {
          documents.add(document);
        }
      }
    }
    return documents;
  }

  private static JsonNode one(String kind) throws IOException {
    List<JsonNode> found = manifests().stream().filter(o -> o.path("kind").asText().equals(kind)).toList();
    assertEquals(1, found.size(), "one " + kind);
    return found.get(0);
  }

  private static JsonNode container(String name) throws IOException {
    for (JsonNode c : one("DaemonSet").path("spec").path("template").path("spec").path("containers")) {
      if (c.path("name").asText().equals(name)) {
        return c;
      }
    }
    throw new AssertionError("no container " + name);
  }

  private static JsonNode baseConfig() throws IOException {
    String json = one("ConfigMap").path("data").path("agent.json").asText();
    assertFalse(json.isEmpty(), "ConfigMap key agent.json");
    JsonNode base = JSON.readTree(json);
    for (String key : List.of("clusterCidr", "blockPrefixLength")) {
      assertTrue(base.path("network").has(key), "ConfigMap agent.json sets network." + key);
    }
    assertTrue(base.path("charon").has("datapath"), "ConfigMap agent.json sets charon.datapath");
    return base;
  }

  private static String text(JsonNode node, String field) {
    String value = node.path(field).asText();
    if (value.isEmpty()) {
      fail("missing " + field + " in " + node);
    }
    return value;
  }

  private static String envOf(JsonNode container, String name) {
    for (JsonNode e : container.path("env")) {
      if (e.path("name").asText().equals(name)) {
        return e.path("value").asText();
      }
    }
    throw new AssertionError(container.path("name").asText() + " has no env " + name);
  }

  private static JsonNode mountNamed(JsonNode container, String volume) {
    for (JsonNode m : container.path("volumeMounts")) {
      if (m.path("name").asText().equals(volume)) {
        return m;
      }
    }
    throw new AssertionError(container.path("name").asText() + " does not mount " + volume);
  }

  private static String mountOf(JsonNode container, String volume) {
    return mountNamed(container, volume).path("mountPath").asText();
  }

  private static String volumeMountedAt(JsonNode container, String path) {
    for (JsonNode m : container.path("volumeMounts")) {
      if (m.path("mountPath").asText().equals(path)) {
        return m.path("name").asText();
      }
    }
    throw new AssertionError(container.path("name").asText() + " mounts nothing at " + path);
  }

  private static JsonNode volumeNamed(JsonNode pod, String name) {
    for (JsonNode v : pod.path("volumes")) {
      if (v.path("name").asText().equals(name)) {
        return v;
      }
    }
    throw new AssertionError("no volume " + name);
  }

  private static String hostPathOf(JsonNode pod, String volume) {
    String path = volumeNamed(pod, volume).path("hostPath").path("path").asText();
    assertFalse(path.isEmpty(), volume + " is not a hostPath volume");
    return path;
  }

  /** Dockerfile lines with their backslash continuations joined, comments dropped. */
  private static List<String> logicalLines(Path file) throws IOException {
    List<String> lines = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    for (String raw : Files.readAllLines(file)) {
      String line = raw.strip();
      if (line.startsWith("#") || (line.isEmpty() && current.isEmpty())) {
        continue;
      }
      if (line.endsWith("\\")) {
        current.append(line, 0, line.length() - 1).append(' ');
        continue;
      }
      current.append(line);
      lines.add(current.toString().replaceAll("\\s+", " ").trim());
      current.setLength(0);
    }
    return lines;
  }

  private static boolean globMatches(String source) throws IOException {
    Path parent = ROOT.resolve(source).getParent();
    if (!Files.isDirectory(parent)) {
      return false;
    }
    PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + ROOT.resolve(source));
    try (Stream<Path> files = Files.list(parent)) {
      return files.anyMatch(matcher::matches);
    }
  }

  private static boolean onPath(String command) {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, command))) {
        return true;
      }
    }
    return false;
  }

  private record Result(int exit, String output) {}

  private static Result run(Path dir, String... command) throws Exception {
    return run(dir, List.of(command), Map.of());
  }

  private static Result run(Path dir, List<String> command, Map<String, String> env) throws Exception {
    ProcessBuilder builder = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true);
    builder.environment().putAll(env);
    Process process = builder.start();
    process.getOutputStream().close();
    byte[] output = process.getInputStream().readAllBytes();
    if (!process.waitFor(120, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      fail(command + " did not finish in 120 s");
    }
    assertNotNull(output);
    return new Result(process.exitValue(), new String(output, StandardCharsets.UTF_8));
  }
}

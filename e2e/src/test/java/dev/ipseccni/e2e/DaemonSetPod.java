package dev.ipseccni.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.StreamSupport;

/**
 * The DaemonSet's pod as kubelet would run it on one node, read from the manifests in
 * {@code k8s/} (never copied from them): its containers in order (init containers first)
 * with command, args, environment and mounts, and its volumes. What kubelet resolves is
 * resolved here: downward-API fieldRefs from the node's name and address, configMap and
 * secret key references from the parsed ConfigMap and Secret, and configMap / secret /
 * emptyDir volumes written out as directories. Anything this reader does not know fails
 * with the manifest's own names, so a new field cannot slip past the test unseen.
 */
final class DaemonSetPod {

  private static final YAMLMapper YAML = new YAMLMapper();

  /** One container's mount: the volume, where it appears in the container, and how. */
  record Mount(String volume, String mountPath, boolean readOnly, String propagation) {}

  /** One environment entry as the manifest writes it (value or valueFrom). */
  record EnvEntry(String name, JsonNode spec) {}

  /** A container of the pod, init or not, as declared. */
  record Container(String name, boolean init, String image, List<String> command, List<String> args,
                   List<EnvEntry> env, List<Mount> mounts, boolean privileged, JsonNode spec) {}

  private final JsonNode daemonSet;
  private final Map<String, ObjectNode> configMaps;
  private final Map<String, Map<String, String>> secrets;

  private DaemonSetPod(JsonNode daemonSet, Map<String, ObjectNode> configMaps, Map<String, Map<String, String>> secrets) {
    this.daemonSet = daemonSet;
    this.configMaps = configMaps;
    this.secrets = secrets;
  }

  /** Reads every manifest in the directory; the DaemonSet must be one of them, once. */
  static DaemonSetPod read(Path k8s) throws IOException {
    JsonNode daemonSet = null;
    Map<String, ObjectNode> configMaps = new LinkedHashMap<>();
    Map<String, Map<String, String>> secrets = new LinkedHashMap<>();
    List<Path> files;
    try (var list = Files.list(k8s)) {
      files = list.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
    }
    for (Path file : files) {
      try (var parser = YAML.getFactory().createParser(file.toFile())) {
        for (var it = YAML.readValues(parser, JsonNode.class); it.hasNext(); ) {
          JsonNode doc = it.next();
          String name = doc.path("metadata").path("name").asText();
          switch (doc.path("kind").asText()) {
            case "DaemonSet" -> {
              if (daemonSet != null) {
                throw new AssertionError("two DaemonSets in " + k8s + "; the test knows one");
              }
              daemonSet = doc;
            }
            case "ConfigMap" -> configMaps.put(name, ((ObjectNode) doc.path("data")).deepCopy());
            case "Secret" -> {
              Map<String, String> data = new LinkedHashMap<>();
              doc.path("data").fields().forEachRemaining(e -> data.put(e.getKey(),
                  new String(Base64.getDecoder().decode(e.getValue().asText()), StandardCharsets.UTF_8)));
              doc.path("stringData").fields().forEachRemaining(e -> data.put(e.getKey(), e.getValue().asText()));
              secrets.put(name, data);
            }
            default -> { }
          }
        }
      }
    }
    if (daemonSet == null) {
      throw new AssertionError("no DaemonSet in " + k8s);
    }
    return new DaemonSetPod(daemonSet, configMaps, secrets);
  }

  /** A deep copy, to change without touching this one. */
  DaemonSetPod copy() {
    Map<String, ObjectNode> maps = new LinkedHashMap<>();
    configMaps.forEach((k, v) -> maps.put(k, v.deepCopy()));
    Map<String, Map<String, String>> keys = new LinkedHashMap<>();
    secrets.forEach((k, v) -> keys.put(k, new LinkedHashMap<>(v)));
    return new DaemonSetPod(daemonSet.deepCopy(), maps, keys);
  }

  JsonNode podSpec() {
    return daemonSet.path("spec").path("template").path("spec");
  }

  String namespace() {
    return daemonSet.path("metadata").path("namespace").asText("default");
  }

  /** The ConfigMap's data, editable as an operator edits it before applying (the lab's settings). */
  ObjectNode configMap(String name) {
    ObjectNode data = configMaps.get(name);
    if (data == null) {
      throw new AssertionError("the DaemonSet refers to ConfigMap " + name + ", which no manifest in k8s/ defines");
    }
    return data;
  }

  /** The Secret's data, editable (the manifest's value is a placeholder an operator replaces). */
  Map<String, String> secret(String name) {
    Map<String, String> data = secrets.get(name);
    if (data == null) {
      throw new AssertionError("the DaemonSet refers to Secret " + name + ", which no manifest in k8s/ defines");
    }
    return data;
  }

  /** Init containers first, in order, then the others: the order kubelet starts them in. */
  List<Container> containers() {
    List<Container> out = new ArrayList<>();
    for (String key : List.of("initContainers", "containers")) {
      for (JsonNode c : podSpec().path(key)) {
        List<Mount> mounts = new ArrayList<>();
        for (JsonNode m : c.path("volumeMounts")) {
          mounts.add(new Mount(m.path("name").asText(), m.path("mountPath").asText(), m.path("readOnly").asBoolean(false),
              m.path("mountPropagation").asText("None")));
        }
        List<EnvEntry> env = new ArrayList<>();
        for (JsonNode e : c.path("env")) {
          env.add(new EnvEntry(e.path("name").asText(), e));
        }
        out.add(new Container(c.path("name").asText(), key.equals("initContainers"), c.path("image").asText(),
            strings(c.path("command")), strings(c.path("args")), env, mounts,
            c.path("securityContext").path("privileged").asBoolean(false), c));
      }
    }
    return out;
  }

  /** The volume the pod declares by that name. */
  JsonNode volume(String name) {
    for (JsonNode v : podSpec().path("volumes")) {
      if (v.path("name").asText().equals(name)) {
        return v;
      }
    }
    throw new AssertionError("a volumeMount names volume " + name + ", which the DaemonSet does not declare");
  }

  List<JsonNode> volumes() {
    return StreamSupport.stream(podSpec().path("volumes").spliterator(), false).toList();
  }

  /**
   * The container's environment as kubelet gives it on a node: fieldRefs from the node,
   * configMap / secret keys from the manifests (an optional key that is absent is left out).
   */
  Map<String, String> environment(Container c, String nodeName, String hostIp) {
    Map<String, String> out = new LinkedHashMap<>();
    for (EnvEntry e : c.env()) {
      JsonNode spec = e.spec();
      if (spec.has("value")) {
        out.put(e.name(), spec.path("value").asText());
        continue;
      }
      JsonNode from = spec.path("valueFrom");
      if (from.has("fieldRef")) {
        String field = from.path("fieldRef").path("fieldPath").asText();
        out.put(e.name(), switch (field) {
          case "spec.nodeName" -> nodeName;
          case "status.hostIP" -> hostIp;
          case "metadata.namespace" -> namespace();
          default -> throw new AssertionError("container " + c.name() + ", env " + e.name()
              + ": fieldRef " + field + " is not one the test can resolve on a lab node");
        });
      } else if (from.has("configMapKeyRef") || from.has("secretKeyRef")) {
        boolean isConfigMap = from.has("configMapKeyRef");
        JsonNode ref = isConfigMap ? from.path("configMapKeyRef") : from.path("secretKeyRef");
        String key = ref.path("key").asText();
        Optional<String> value = isConfigMap
            ? Optional.ofNullable(configMap(ref.path("name").asText()).get(key)).map(JsonNode::asText)
            : Optional.ofNullable(secret(ref.path("name").asText()).get(key));
        if (value.isPresent()) {
          out.put(e.name(), value.get());
        } else if (!ref.path("optional").asBoolean(false)) {
          throw new AssertionError("container " + c.name() + ", env " + e.name() + ": key " + key
              + " is missing from " + ref.path("name").asText() + " and not optional: kubelet would not start it");
        }
      } else {
        throw new AssertionError("container " + c.name() + ", env " + e.name() + ": " + spec + " is not understood");
      }
    }
    return out;
  }

  /**
   * Writes a configMap or secret volume as kubelet does (one file per item, the secret's
   * defaultMode), or makes an emptyDir, under {@code dir}; returns the directory to mount.
   */
  Path materialize(JsonNode volume, Path dir) throws IOException {
    Files.createDirectories(dir);
    if (volume.has("emptyDir")) {
      return dir;
    }
    Map<String, String> data = new LinkedHashMap<>();
    JsonNode source;
    int mode;
    if (volume.has("configMap")) {
      source = volume.path("configMap");
      configMap(source.path("name").asText()).fields().forEachRemaining(e -> data.put(e.getKey(), e.getValue().asText()));
      mode = source.path("defaultMode").asInt(0644);
    } else if (volume.has("secret")) {
      source = volume.path("secret");
      data.putAll(secret(source.path("secretName").asText()));
      mode = source.path("defaultMode").asInt(0644);
    } else {
      throw new AssertionError("volume " + volume.path("name").asText() + ": " + volume + " is not a configMap, secret or emptyDir");
    }
    Map<String, String> files = new LinkedHashMap<>();
    if (source.has("items")) {
      for (JsonNode item : source.path("items")) {
        String key = item.path("key").asText();
        if (!data.containsKey(key)) {
          throw new AssertionError("volume " + volume.path("name").asText() + " lists key " + key + ", which its source lacks");
        }
        files.put(item.path("path").asText(), data.get(key));
      }
    } else {
      files.putAll(data);
    }
    for (var f : files.entrySet()) {
      Path file = dir.resolve(f.getKey());
      Files.createDirectories(file.getParent());
      Files.writeString(file, f.getValue());
      Files.setPosixFilePermissions(file, permissions(mode));
    }
    return dir;
  }

  private static Set<PosixFilePermission> permissions(int mode) {
    Set<PosixFilePermission> out = EnumSet.noneOf(PosixFilePermission.class);
    PosixFilePermission[] bits = PosixFilePermission.values(); // OWNER_READ … OTHERS_EXECUTE, high bit first
    for (int i = 0; i < 9; i++) {
      if ((mode & (1 << (8 - i))) != 0) {
        out.add(bits[i]);
      }
    }
    return out;
  }

  /**
   * The host path behind a path inside the container, if that path lies on one of its
   * hostPath mounts: where a process on the node (the runtime, the plugin binary) finds it.
   */
  Optional<String> hostPathOf(Container c, String containerPath) {
    Mount best = null;
    for (Mount m : c.mounts()) {
      if (under(containerPath, m.mountPath()) && (best == null || m.mountPath().length() > best.mountPath().length())) {
        best = m;
      }
    }
    if (best == null || !volume(best.volume()).has("hostPath")) {
      return Optional.empty();
    }
    String host = volume(best.volume()).path("hostPath").path("path").asText();
    return Optional.of(host + containerPath.substring(best.mountPath().length()));
  }

  /** True when path is dir itself or lies below it. */
  static boolean under(String path, String dir) {
    return path.equals(dir) || path.startsWith(dir.endsWith("/") ? dir : dir + "/");
  }

  static List<String> strings(JsonNode array) {
    return StreamSupport.stream(array.spliterator(), false).map(JsonNode::asText).toList();
  }
}

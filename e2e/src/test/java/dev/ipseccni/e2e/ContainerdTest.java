package dev.ipseccni.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * containerd 1.6 as the libcni runtime: {@code ctr run --cni} on lab node 1 adds a
 * container through our plugin with the conflist node 1's agent wrote, and its DEL when
 * the task ends. The daemon is the test's own (root, state, sockets and the opt dir under
 * the lab dir), started in node 1's namespace and stopped by its PID. No registry: the
 * image is an OCI image layout built here from the host's busybox and imported.
 *
 * <p>ctr reads its CNI config from /etc/cni/net.d and plugins from /opt/cni/bin, with no
 * flag to change either; it runs in a private mount namespace where both are bind mounts
 * of the test's directories (over an overlay of /etc, since a new machine has no
 * /etc/cni), so the host's are never touched nor needed. containerd's shim keeps its
 * sockets under /run/containerd whatever the config says: the test removes that
 * directory again if it was not there before.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ContainerdTest {

  private static final Duration TUNNEL = Duration.ofMinutes(3);
  private static final String IMAGE = "docker.io/library/ipsec-cni-busybox:test";
  private static final String CONTAINER = CniLab.PREFIX + "ctr";
  private static final Path SHIM_DIR = Path.of("/run/containerd");

  private LabHarness lab;
  private CniLab cni;
  private Path dir;
  private Process containerd;
  private Process run;
  private boolean shimDirExisted;

  @BeforeAll
  void up() throws Exception {
    for (String binary : List.of("/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2",
        "/usr/sbin/runc", "/usr/bin/busybox")) {
      assertTrue(Files.isExecutable(Path.of(binary)), binary + " is not installed (scripts/install-deps)");
    }
    shimDirExisted = Files.exists(SHIM_DIR);
    lab = new LabHarness();
    cni = new CniLab(lab);
    cni.up(2, "{}");
    dir = Files.createDirectories(lab.labDir().resolve("containerd"));
    prepareCniDirs(cni.conflist(1).deepCopy());
    startContainerd();
    Path image = buildImage();
    ctr("image", "import", image.toString()).orFail("ctr image import");
  }

  @AfterAll
  void down() throws Exception {
    try {
      if (run != null && run.isAlive()) {
        ctr("task", "kill", "-s", "KILL", CONTAINER);
        run.waitFor(60, TimeUnit.SECONDS);
        run.destroyForcibly();
      }
      if (containerd != null) {
        ctr("container", "rm", CONTAINER);
        containerd.destroy();
        if (!containerd.waitFor(30, TimeUnit.SECONDS)) {
          containerd.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
        cni.run(List.of("sh", "-c", "grep -o ' " + dir + "[^ ]*' /proc/self/mounts | xargs -r -n1 umount -l"));
      }
    } finally {
      if (!shimDirExisted && Files.exists(SHIM_DIR)) {
        cni.run(List.of("rm", "-r", SHIM_DIR.toString()));
      }
      if (lab != null) {
        lab.close();
      }
    }
  }

  /** ctr's fixed CNI dirs, as ours: node 1's conflist, and our plugin with the reference ones beside it. */
  private void prepareCniDirs(ObjectNode conflist) throws IOException {
    Path net = Files.createDirectories(dir.resolve("net.d"));
    Files.writeString(net.resolve("10-ipsec-cni.conflist"), conflist.toPrettyString());
    Path bin = Files.createDirectories(dir.resolve("bin"));
    Files.createSymbolicLink(bin.resolve("ipsec-cni"), cni.plugin);
    for (String reference : List.of("bridge", "loopback")) {
      Files.createSymbolicLink(bin.resolve(reference), Path.of("/usr/lib/cni", reference));
    }
    Path script = dir.resolve("ctr-with-cni-dirs");
    Files.writeString(script, String.join("\n",
        "#!/bin/sh",
        "set -e",
        // A new machine has no /etc/cni: an overlay on /etc, private to this namespace, gives
        // ctr one without creating it on the host.
        "mkdir -p " + dir.resolve("etc-upper") + " " + dir.resolve("etc-work"),
        "mount -t overlay overlay -o lowerdir=/etc,upperdir=" + dir.resolve("etc-upper") + ",workdir="
            + dir.resolve("etc-work") + " /etc",
        "mkdir -p /etc/cni/net.d",
        "mount --bind " + net + " /etc/cni/net.d",
        "mount -t tmpfs tmpfs /opt",
        "mkdir -p /opt/cni/bin",
        "mount --bind " + bin + " /opt/cni/bin",
        "exec ctr --address " + dir.resolve("containerd.sock") + " \"$@\"",
        ""));
    script.toFile().setExecutable(true);
  }

  private void startContainerd() throws Exception {
    Path config = dir.resolve("config.toml");
    Files.writeString(config, String.join("\n",
        "version = 2",
        "root = \"" + dir.resolve("root") + "\"",
        "state = \"" + dir.resolve("state") + "\"",
        "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]",
        "[grpc]",
        "  address = \"" + dir.resolve("containerd.sock") + "\"",
        "[ttrpc]",
        "  address = \"" + dir.resolve("containerd.sock.ttrpc") + "\"",
        "[plugins.\"io.containerd.internal.v1.opt\"]",
        "  path = \"" + dir.resolve("opt") + "\"",
        ""));
    containerd = new ProcessBuilder("nsenter", "--net=/run/netns/" + CniLab.PREFIX + "node1", "containerd",
        "--config", config.toString())
        .redirectErrorStream(true).redirectOutput(dir.resolve("containerd.log").toFile()).start();
    LabHarness.await(Duration.ofMinutes(1), "containerd answering on its socket",
        () -> ctr("version").exitCode() == 0);
  }

  /** An OCI image layout (one layer: busybox and the libraries it links) as a tar ctr can import. */
  private Path buildImage() throws Exception {
    Path rootfs = Files.createDirectories(dir.resolve("rootfs"));
    for (String d : List.of("bin", "proc", "sys", "dev", "etc", "tmp", "run")) {
      Files.createDirectories(rootfs.resolve(d));
    }
    Files.copy(Path.of("/usr/bin/busybox"), rootfs.resolve("bin/busybox"));
    for (String word : cni.run(List.of("ldd", "/usr/bin/busybox")).stdout().split("\\s+")) {
      if (word.startsWith("/")) {
        Path target = rootfs.resolve(word.substring(1));
        Files.createDirectories(target.getParent());
        Files.copy(Path.of(word).toRealPath(), target);
      }
    }
    for (String applet : List.of("sh", "sleep", "ping", "ip")) {
      Files.createSymbolicLink(rootfs.resolve("bin").resolve(applet), Path.of("busybox"));
    }
    Path layout = Files.createDirectories(dir.resolve("image"));
    Path blobs = Files.createDirectories(layout.resolve("blobs/sha256"));
    Path layerTar = dir.resolve("layer.tar");
    cni.run(List.of("tar", "-C", rootfs.toString(), "-cf", layerTar.toString(), ".")).orFail("tar of the rootfs");
    Blob layer = blob(blobs, Files.readAllBytes(layerTar));
    ObjectNode config = LabHarness.JSON.createObjectNode().put("architecture", "amd64").put("os", "linux");
    config.putObject("config").putArray("Env").add("PATH=/bin");
    ObjectNode rootfsNode = config.putObject("rootfs").put("type", "layers");
    rootfsNode.putArray("diff_ids").add(layer.digest());
    Blob configBlob = blob(blobs, LabHarness.JSON.writeValueAsBytes(config));
    ObjectNode manifest = LabHarness.JSON.createObjectNode().put("schemaVersion", 2)
        .put("mediaType", "application/vnd.oci.image.manifest.v1+json");
    manifest.putObject("config").put("mediaType", "application/vnd.oci.image.config.v1+json")
        .put("digest", configBlob.digest()).put("size", configBlob.size());
    manifest.putArray("layers").addObject().put("mediaType", "application/vnd.oci.image.layer.v1.tar")
        .put("digest", layer.digest()).put("size", layer.size());
    Blob manifestBlob = blob(blobs, LabHarness.JSON.writeValueAsBytes(manifest));
    ObjectNode index = LabHarness.JSON.createObjectNode().put("schemaVersion", 2);
    ObjectNode entry = index.putArray("manifests").addObject()
        .put("mediaType", "application/vnd.oci.image.manifest.v1+json")
        .put("digest", manifestBlob.digest()).put("size", manifestBlob.size());
    entry.putObject("annotations").put("io.containerd.image.name", IMAGE)
        .put("org.opencontainers.image.ref.name", "test");
    Files.write(layout.resolve("index.json"), LabHarness.JSON.writeValueAsBytes(index));
    Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
    Path image = dir.resolve("image.tar");
    cni.run(List.of("tar", "-C", layout.toString(), "-cf", image.toString(), "oci-layout", "index.json", "blobs"))
        .orFail("tar of the image layout");
    return image;
  }

  private record Blob(String digest, long size) {}

  private static Blob blob(Path blobs, byte[] content) throws IOException, NoSuchAlgorithmException {
    String hex = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
    Files.write(blobs.resolve(hex), content);
    return new Blob("sha256:" + hex, content.length);
  }

  /** ctr against the test's containerd, inside node 1 with the test's CNI dirs. */
  private LabHarness.Result ctr(String... args) {
    List<String> command = new ArrayList<>(List.of("nsenter", "--net=/run/netns/" + CniLab.PREFIX + "node1",
        "unshare", "-m", "--propagation", "private", dir.resolve("ctr-with-cni-dirs").toString()));
    command.addAll(List.of(args));
    return cni.run(command);
  }

  @Test
  void ctrRunCniAddsTheContainerThroughOurPluginItReachesARemotePodAndTheEndOfTheTaskDels() throws Exception {
    String peer = lab.lab("pod", "add", "2", "peer").stdout();
    String peerAddress = CniLab.address(LabHarness.JSON.readTree(peer)).split("/")[0];
    assertTrue(peerAddress.startsWith("10.128.2."), peer);

    // Foreground ctr run: ctr itself is the libcni client, and it sends DEL once the task has exited.
    List<String> command = new ArrayList<>(List.of("nsenter", "--net=/run/netns/" + CniLab.PREFIX + "node1",
        "unshare", "-m", "--propagation", "private", dir.resolve("ctr-with-cni-dirs").toString(),
        "run", "--rm", "--cni", "--fifo-dir", dir.resolve("fifo").toString(), IMAGE, CONTAINER, "/bin/sleep", "600"));
    run = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("ctr-run.log").toFile())
        .start();
    // ctr's CNI_CONTAINERID is NAMESPACE-ID
    String key = "default-" + CONTAINER + "/eth0";
    LabHarness.await(TUNNEL, "the container's allocation on node1", () -> cni.allocations(1).containsKey(key));
    String address = cni.allocations(1).get(key);
    assertTrue(address.startsWith("10.128.1."), address);
    assertEquals(1, cni.allocations(1).size(), cni.allocations(1).toString());
    String inContainer = ctr("task", "exec", "--exec-id", "addr", CONTAINER, "/bin/ip", "-4", "-o", "addr", "show",
        "eth0").orFail("ip addr in the container").stdout();
    assertTrue(inContainer.contains(address), inContainer);

    int[] probe = {0};
    LabHarness.await(TUNNEL, "container on node1 -> pod on node2 through the tunnel",
        () -> ctr("task", "exec", "--exec-id", "ping" + (++probe[0]), CONTAINER, "/bin/ping", "-c", "1", "-W", "2",
            peerAddress).exitCode() == 0);
    assertEquals("0", lab.lab("leaks").stdout().trim(), "nothing crossed the underlay in plaintext");

    ctr("task", "kill", "-s", "KILL", CONTAINER).orFail("ctr task kill");
    assertTrue(run.waitFor(2, TimeUnit.MINUTES), "ctr run did not return after its task was killed");
    assertEquals(Map.of(), cni.allocations(1), "the DEL after the task's end released the address: "
        + Files.readString(dir.resolve("ctr-run.log")));
    assertEquals(List.of(), cni.veths(1), "the DEL removed the veth");
  }
}

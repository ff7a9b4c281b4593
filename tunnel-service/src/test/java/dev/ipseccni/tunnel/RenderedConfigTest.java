package dev.ipseccni.tunnel;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.tunnel.lab.NetnsLab;
import dev.ipseccni.tunnel.vici.ViciSession;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The rendered swanctl.conf is accepted by the real swanctl and charon, keys included. */
class RenderedConfigTest {
  private NetnsLab lab;

  @AfterEach
  void tearDown() {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void swanctlLoadsTheRenderedFile() throws Exception {
    NetnsLab.requireCharonAndRoot();
    requireSwanctl();
    lab = new NetnsLab();
    NetnsLab.Charon charon = lab.charon(lab.namespace("conf"));

    Path secretFile = lab.dir().resolve("secret");
    Files.writeString(secretFile, "cluster-secret-for-the-swanctl-test-0123456789");
    Files.setPosixFilePermissions(secretFile, PosixFilePermissions.fromString("rw-------"));
    TunnelSettings settings = TunnelSettings.of("node-a", "192.168.250.1", charon.vici(), secretFile,
        Datapath.LIBIPSEC, lab.dir().resolve("swanctl.conf"));
    ClusterSecret secret = ClusterSecret.load(secretFile);
    TunnelRenderer r = new TunnelRenderer(settings);
    NodeBlockLease own = new NodeBlockLease("node-a", "192.168.250.1", "10.128.1.0/24", 1, 0);
    Map<String, PeerTunnel> desired = r.desired(own, List.of(
        new NodeBlockLease("node-b", "192.168.250.2", "10.128.2.0/24", 1, 0),
        new NodeBlockLease("node-c.example", "192.168.250.3", "10.128.3.0/24", 1, 0)));
    Path conf = lab.dir().resolve("swanctl.conf");
    Files.writeString(conf, r.swanctlConf(desired.values(), t -> PairKeys.of(secret)));

    String out = NetnsLab.exec(charon.namespace(), "swanctl", "--load-all", "--noprompt",
        "--file", conf.toString(), "--uri", "unix://" + charon.vici());
    assertTrue(out.contains("loaded 2 connections") || out.contains("successfully loaded 2 connections"), out);

    try (ViciSession s = charon.connect()) {
      List<String> conns = s.getConns();
      for (String name : desired.keySet()) {
        assertTrue(conns.contains(name), name + " in " + conns);
      }
    }
    assertTrue(out.contains("loaded ike secret"), out);
  }

  private static void requireSwanctl() {
    org.junit.jupiter.api.Assertions.assertTrue(Files.isExecutable(Path.of("/usr/sbin/swanctl")),
        "swanctl not installed");
  }
}

package dev.ipseccni.tunnel.lab;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The lab removes what a crashed earlier run left, and only that. */
class NetnsLabTest {
  @Test
  void namespacesOfADeadRunAreSweptAndOwnAreKept() throws Exception {
    NetnsLab.requireCharonAndRoot();
    Process gone = new ProcessBuilder("true").start();
    gone.waitFor();
    String stale = "vt-" + gone.pid() + "-stale";
    NetnsLab.run(List.of("ip", "netns", "add", stale));
    Files.createDirectories(Path.of("/etc/netns", stale));
    try (NetnsLab lab = new NetnsLab()) {
      String own = lab.namespace("kept");
      assertFalse(NetnsLab.run(List.of("ip", "netns", "list")).contains(stale), "stale namespace removed");
      assertFalse(Files.exists(Path.of("/etc/netns", stale)), "its strongswan.conf directory removed");
      NetnsLab.sweepStale();
      assertTrue(NetnsLab.run(List.of("ip", "netns", "list")).contains(own), "a live run's namespace is kept");
    } finally {
      if (NetnsLab.run(List.of("ip", "netns", "list")).contains(stale)) {
        NetnsLab.run(List.of("ip", "netns", "del", stale));
      }
    }
  }
}

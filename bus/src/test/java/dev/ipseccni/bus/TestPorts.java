package dev.ipseccni.bus;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Ports for tests' cluster members and servers, taken from below the kernel's ephemeral range.
 *
 * <p>A port the kernel hands out for {@code bind(0)} is one it may hand out again as the
 * source port of an outgoing connection. A Hazelcast member that dials a listed member not yet
 * started can then connect to itself (TCP simultaneous open on 127.0.0.1) and hold the very
 * port the other member is about to bind: "Port [N] is already in use". Below the range the
 * kernel never picks a port on its own, and this class never hands out one port twice.
 */
public final class TestPorts {

  private static final Path EPHEMERAL_RANGE = Path.of("/proc/sys/net/ipv4/ip_local_port_range");
  private static final int SPAN = 10_000;
  private static final Set<Integer> HANDED_OUT = ConcurrentHashMap.newKeySet();

  private TestPorts() {
  }

  /** A port nothing listens on now, outside the ephemeral range, not returned before in this JVM. */
  public static int free() {
    int below = ephemeralLow();
    for (int attempt = 0; attempt < 1_000; attempt++) {
      int port = ThreadLocalRandom.current().nextInt(below - SPAN, below);
      if (HANDED_OUT.add(port) && bindable(port)) {
        return port;
      }
    }
    throw new IllegalStateException("no free port in [" + (below - SPAN) + ", " + below + ") after 1000 tries");
  }

  private static boolean bindable(int port) {
    try (ServerSocket s = new ServerSocket()) {
      s.setReuseAddress(false);
      s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
      return true;
    } catch (IOException inUse) {
      return false;
    }
  }

  private static int ephemeralLow() {
    try {
      int low = Integer.parseInt(Files.readAllLines(EPHEMERAL_RANGE).get(0).trim().split("\\s+")[0]);
      if (low <= SPAN + 1024) {
        throw new IllegalStateException(EPHEMERAL_RANGE + " starts at " + low + ": no room below it for test ports");
      }
      return low;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + EPHEMERAL_RANGE, e);
    }
  }
}

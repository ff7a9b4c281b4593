package dev.ipseccni.e2e;

import dev.ipseccni.e2e.TunnelLab.IkeSa;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What the kernel-mode tests look at on a lab node that is a User-Mode Linux guest
 * ({@code scripts/lab up N --kernel}). charon's VICI socket lives in the guest's kernel, out of
 * the host's reach, so charon's view comes from {@code swanctl --list-sas --raw} run in the guest
 * through the lab's exec channel, and the kernel's from {@code ip xfrm}.
 */
final class KernelLab {
  /** Boot of the guests, the agents' JVM start in UML (C1 and AppCDS: ~20-60 s each) and the first IKE. */
  static final Duration TUNNELS_UP = Duration.ofSeconds(300);
  /** ESP in the kernel: IP protocol 50 on the wire, not UDP-encapsulated. */
  static final String RAW_ESP = "ip proto 50";

  private KernelLab() {}

  /** IKE SAs by connection name, as charon in node's guest lists them; of two for one connection, an established one. */
  static Map<String, IkeSa> ikeSas(LabHarness lab, int node) {
    Map<String, IkeSa> out = new TreeMap<>();
    for (IkeSa sa : allIkeSas(lab, node)) {
      out.merge(sa.conn(), sa, (a, b) -> "ESTABLISHED".equals(a.state()) && a.installedChildren() > 0 ? a : b);
    }
    return out;
  }

  /**
   * The packets in and out of every CHILD SA of each connection, over all its IKE SAs: when both
   * ends' traps fire at once, a pair may hold two IKE SAs, and the kernel sends on the newer.
   */
  static Map<String, long[]> packetTotals(LabHarness lab, int node) {
    Map<String, long[]> out = new TreeMap<>();
    for (IkeSa sa : allIkeSas(lab, node)) {
      long[] t = out.computeIfAbsent(sa.conn(), c -> new long[2]);
      t[0] += sa.packetsIn();
      t[1] += sa.packetsOut();
    }
    return out;
  }

  /** Every IKE SA charon in node's guest lists, in its order. */
  static List<IkeSa> allIkeSas(LabHarness lab, int node) {
    LabHarness.Result r = lab.exec(String.valueOf(node), "swanctl", "--list-sas", "--raw")
        .orFail("node" + node + " swanctl --list-sas");
    List<IkeSa> out = new ArrayList<>();
    for (String line : r.stdout().lines().toList()) {
      if (!line.startsWith("list-sa event ")) {
        continue;
      }
      Map<String, Object> event = new RawParser(line.substring("list-sa event ".length())).section();
      event.forEach((conn, value) -> {
        Map<String, Object> ike = section(value);
        long bi = 0, bo = 0, pi = 0, po = 0;
        int installed = 0;
        for (Object childValue : section(ike.getOrDefault("child-sas", Map.of())).values()) {
          Map<String, Object> child = section(childValue);
          bi += number(child, "bytes-in");
          bo += number(child, "bytes-out");
          pi += number(child, "packets-in");
          po += number(child, "packets-out");
          if ("INSTALLED".equals(child.get("state"))) {
            installed++;
          }
        }
        out.add(new IkeSa(conn, String.valueOf(ike.getOrDefault("uniqueid", "?")),
            String.valueOf(ike.getOrDefault("state", "?")), bi, bo, pi, po, installed));
      });
    }
    return out;
  }

  static boolean tunnelUp(LabHarness lab, int node, int peer) {
    IkeSa sa = ikeSas(lab, node).get("peer-node" + peer);
    return sa != null && sa.state().equals("ESTABLISHED") && sa.installedChildren() > 0;
  }

  static void awaitFullMesh(LabHarness lab, int nodes) {
    for (int node = 1; node <= nodes; node++) {
      for (int peer = 1; peer <= nodes; peer++) {
        if (peer != node) {
          int n = node, p = peer;
          LabHarness.await(TUNNELS_UP, "node" + n + " -> node" + p + " tunnel established",
              () -> tunnelUp(lab, n, p));
        }
      }
    }
  }

  /** {@code ip xfrm state} or {@code ip xfrm policy} in node's guest kernel, one line each. */
  static List<String> xfrm(LabHarness lab, int node, String what) {
    return lab.exec(String.valueOf(node), "ip", "xfrm", what).orFail("node" + node + " ip xfrm " + what)
        .stdout().lines().filter(l -> !l.isBlank()).toList();
  }

  /** The priorities of the firewall's two XFRM policies, its guard after NAT where nftables cannot hold one. */
  static final List<String> GUARD_PRIORITIES = List.of("1000000", "1000001");

  /**
   * node's XFRM policies, each whole (its selector line and the lines under it), under "guard"
   * (the firewall's, at {@link #GUARD_PRIORITIES}) or "charon" (all others).
   */
  static Map<String, List<String>> policiesByOwner(LabHarness lab, int node) {
    Map<String, List<String>> out = new TreeMap<>(Map.of("guard", new ArrayList<>(), "charon", new ArrayList<>()));
    StringBuilder policy = null;
    List<String> lines = new ArrayList<>(xfrm(lab, node, "policy"));
    lines.add("src end");
    for (String line : lines) {
      if (line.startsWith("src ")) {
        if (policy != null) {
          String whole = policy.toString();
          boolean guard = GUARD_PRIORITIES.stream().anyMatch(p -> whole.matches("(?s).* priority " + p + " .*"));
          out.get(guard ? "guard" : "charon").add(whole);
        }
        policy = new StringBuilder(line);
      } else if (policy != null) {
        policy.append('\n').append(line);
      }
    }
    return out;
  }

  /** Bytes of the file the MTU proof moves over TCP. */
  static final int TRANSFER_BYTES = 20 * 1024 * 1024;

  /**
   * The pod MTU on a lab whose links all have {@code linkMtu}: node's agent derived it from eth0
   * (raw ESP with the default proposal), the client pod's eth0 has it, 20 MB cross the tunnel
   * over TCP from the server pod, a DF ping of exactly the pod MTU is answered and one byte more
   * fails at the pod with "message too long" (never a silent black hole).
   */
  static void proveMtu(LabHarness lab, int node, String client, String server, String serverAddress, int linkMtu)
      throws java.io.IOException {
    int expected = dev.ipseccni.tunnel.EspOverhead.worstOf(dev.ipseccni.tunnel.Proposals.DEFAULT.esp(), false)
        .largestInner(linkMtu);
    com.fasterxml.jackson.databind.JsonNode mtu = lab.state(node).orElseThrow().path("mtu");
    org.junit.jupiter.api.Assertions.assertEquals(expected, mtu.path("pod").asInt(), "node" + node + " /state mtu: " + mtu);
    org.junit.jupiter.api.Assertions.assertTrue(mtu.path("derivation").asText().startsWith("eth0 MTU " + linkMtu),
        "derived from eth0: " + mtu);
    String link = lab.exec("pod-" + client, "ip", "-o", "link", "show", "eth0").orFail("pod eth0").stdout();
    org.junit.jupiter.api.Assertions.assertTrue(link.contains(" mtu " + expected + " "), "pod " + client + " eth0: " + link);

    java.nio.file.Path big = lab.labDir().resolve("www-" + server).resolve("big.bin");
    java.nio.file.Files.write(big, new byte[TRANSFER_BYTES]);
    LabHarness.Result get = lab.exec("pod-" + client, "curl", "-s", "-o", "/dev/null", "-m", "300", "-w", "%{size_download}",
        "http://" + serverAddress + ":8080/big.bin");
    org.junit.jupiter.api.Assertions.assertEquals(String.valueOf(TRANSFER_BYTES), get.stdout().trim(),
        "20 MB over TCP from pod " + server + " to pod " + client + " (curl exit " + get.exitCode() + ": " + get.stderr() + ")");

    int payload = expected - 28;
    LabHarness.await(Duration.ofSeconds(30), "a DF ping of " + expected + " bytes answered", () -> lab.exec("pod-" + client,
        "ping", "-c", "1", "-W", "3", "-M", "do", "-s", String.valueOf(payload), serverAddress).exitCode() == 0);
    LabHarness.Result tooBig = lab.exec("pod-" + client, "ping", "-c", "1", "-W", "3", "-M", "do", "-s",
        String.valueOf(payload + 1), serverAddress);
    org.junit.jupiter.api.Assertions.assertTrue(tooBig.exitCode() != 0
            && (tooBig.stdout() + tooBig.stderr()).contains("message too long"),
        "a DF ping of " + (expected + 1) + " bytes fails at the pod with 'message too long': exit " + tooBig.exitCode()
            + "\n" + tooBig.stdout() + tooBig.stderr());
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> section(Object value) {
    return value instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
  }

  private static long number(Map<String, Object> m, String key) {
    Object v = m.get(key);
    return v instanceof String s && !s.isEmpty() ? Long.parseLong(s) : 0L;
  }

  /**
   * swanctl's raw form of a VICI message: {@code {key=value key=[a b] name {…}}}; values hold no
   * spaces, lists are bracketed.
   */
  static final class RawParser {
    private final String s;
    private int i;

    RawParser(String s) {
      this.s = s;
    }

    Map<String, Object> section() {
      expect('{');
      Map<String, Object> out = new LinkedHashMap<>();
      skipSpaces();
      while (peek() != '}') {
        String key = until("= {}");
        if (peek() == '=') {
          i++;
          if (peek() == '[') {
            i++;
            List<String> items = new ArrayList<>();
            skipSpaces();
            while (peek() != ']') {
              items.add(item());
              skipSpaces();
            }
            i++;
            out.put(key, items);
          } else {
            out.put(key, until(" }"));
          }
        } else {
          skipSpaces();
          out.put(key, section());
        }
        skipSpaces();
      }
      i++;
      return out;
    }

    private char peek() {
      if (i >= s.length()) {
        throw new AssertionError("swanctl --raw output ends early: " + s);
      }
      return s.charAt(i);
    }

    private void expect(char c) {
      if (peek() != c) {
        throw new AssertionError("swanctl --raw: expected '" + c + "' at " + i + ": " + s);
      }
      i++;
    }

    private void skipSpaces() {
      while (i < s.length() && s.charAt(i) == ' ') {
        i++;
      }
    }

    /** A list item; a traffic selector's own brackets (192.0.2.11/32[tcp/5701]) are part of it. */
    private String item() {
      int start = i;
      int depth = 0;
      while (i < s.length() && s.charAt(i) != ' ' && (s.charAt(i) != ']' || depth > 0)) {
        depth += s.charAt(i) == '[' ? 1 : s.charAt(i) == ']' ? -1 : 0;
        i++;
      }
      return s.substring(start, i);
    }

    private String until(String stops) {
      int start = i;
      while (i < s.length() && stops.indexOf(s.charAt(i)) < 0) {
        i++;
      }
      return s.substring(start, i);
    }
  }
}

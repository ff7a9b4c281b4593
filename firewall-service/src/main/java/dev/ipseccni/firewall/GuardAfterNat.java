package dev.ipseccni.firewall;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.logging.Logger;

/**
 * Kernel ESP only: the plaintext guard for Service traffic, applied after source NAT.
 *
 * <p>A NodePort request from outside, or the node's own request to a cluster IP, that kube-proxy
 * DNATed to a pod of another node is routed with its original source, which no pair's policy
 * holds: no IPsec in FORWARD or OUTPUT. {@code IPSEC-CNI-NAT} then gives it the gateway's address,
 * and the kernel looks the XFRM policy up again with the new source (nf_nat's re-route): only now
 * does the pair's policy encrypt it. So the filter chains accept such traffic unprotected, and this
 * guard is the one that drops it when the second lookup found no tunnel. Two ways, the first that
 * works:
 * <ul>
 *   <li>{@link Kind#NFTABLES}: a chain of our own nftables table at postrouting priority 200 (after
 *       srcnat), which lets through what leaves on lo or the bridge and what is routed through
 *       IPsec ({@code rt ipsec exists}), and drops anything else to the cluster CIDR;
 *   <li>{@link Kind#XFRM}, for kernels without nf_tables for IPv4: two XFRM policies below any
 *       charon installs (a larger priority loses), own block to own block allowed, own block to
 *       the cluster CIDR blocked. After SNAT the source is the gateway, so a packet without a pair's
 *       policy meets the block; while charon is down they are the only policies left.
 * </ul>
 * When neither works ({@link Kind#NONE}) the filter chains do not accept the DNATed traffic at
 * all: Services to remote pods fail, closed, and the firewall says why.
 */
final class GuardAfterNat {
  private static final Logger LOG = Logger.getLogger(GuardAfterNat.class.getName());

  enum Kind { NFTABLES, XFRM, NONE }

  static final String TABLE = OwnChains.MARK;
  static final String CHAIN = "guard-after-nat";
  /** charon's policies have priorities far below this; a larger value loses to every one of them. */
  static final int ALLOW_PRIORITY = 1_000_000;
  static final int BLOCK_PRIORITY = ALLOW_PRIORITY + 1;
  private static final String DROP_COMMENT = OwnChains.MARK + ": plaintext guard after NAT";

  private final FirewallSettings settings;
  private final Iptables commands;
  private Kind kind;
  private String whyNotNft = "";
  /** The table as this nft lists it, learned once after writing it, when that differs from ours. */
  private List<String> printedTable;

  GuardAfterNat(FirewallSettings settings, Iptables commands) {
    this.settings = settings;
    this.commands = commands;
  }

  /** The guard this node has now; {@link Kind#NONE} until the first {@link #enforce}. */
  Kind kind() {
    return kind == null ? Kind.NONE : kind;
  }

  /** How drift reports and the asserted-chains list name the guard in place. */
  Optional<String> label() {
    return switch (kind()) {
      case NFTABLES -> Optional.of("nft/ip " + TABLE + " " + CHAIN);
      case XFRM -> Optional.of("xfrm/out policies " + ALLOW_PRIORITY + "," + BLOCK_PRIORITY);
      case NONE -> Optional.empty();
    };
  }

  /**
   * Asserts the guard for the own block, adds what it repaired, and says which guard holds. The
   * kind found to work is kept: nftables is tried again only when the XFRM fallback fails too.
   */
  Kind enforce(Ipv4Cidr block, List<String> repaired) {
    if (kind != Kind.XFRM) {
      try {
        enforceNft(repaired);
        changeTo(Kind.NFTABLES, "");
        return kind;
      } catch (IptablesException e) {
        whyNotNft = e.getMessage();
      }
    }
    try {
      enforceXfrm(block, repaired);
      changeTo(Kind.XFRM, "nftables cannot hold the guard after NAT (" + firstLine(whyNotNft) + "); "
          + "XFRM policies " + ALLOW_PRIORITY + "/" + BLOCK_PRIORITY + " guard Service traffic instead");
    } catch (IptablesException e) {
      changeTo(Kind.NONE, "no guard after NAT is possible (nft: " + firstLine(whyNotNft) + "; ip xfrm: "
          + firstLine(e.getMessage()) + "): Service traffic to pods of other nodes is dropped, not sent unguarded");
    }
    return kind;
  }

  /** Removes both kinds, whichever is in place; a command that is missing has nothing to remove. */
  void uninstall() throws IptablesException {
    if (nftTable().isPresent()) {
      commands.run("", "nft", "delete", "table", "ip", TABLE);
    }
    for (Policy policy : ourPolicies()) {
      commands.run("", "ip", "xfrm", "policy", "delete", "src", policy.src(), "dst",
          policy.dst(), "dir", "out");
    }
  }

  /** What of the guard is still in place: empty after a complete {@link #uninstall}. */
  List<String> leftovers() throws IptablesException {
    List<String> left = new ArrayList<>();
    if (nftTable().isPresent()) {
      left.add("nft table ip " + TABLE);
    }
    for (Policy policy : ourPolicies()) {
      left.add("xfrm policy " + policy);
    }
    return left;
  }

  private void enforceNft(List<String> repaired) throws IptablesException {
    List<String> wanted = tableLines();
    Optional<List<String>> found = nftTable();
    if (found.isPresent() && (found.get().equals(wanted) || found.get().equals(printedTable))) {
      return;
    }
    // one transaction: created if missing, so that the delete cannot fail, then written whole
    String script = "table ip " + TABLE + "\ndelete table ip " + TABLE + "\n" + String.join("\n", wanted) + "\n";
    commands.run(script, "nft", "-f", "-");
    repaired.add("nft/ip " + TABLE + " " + CHAIN + ": " + (found.isEmpty() ? "table missing" : "table differs"));
    List<String> printed = nftTable().orElseThrow(() -> new IptablesException("nft: table ip " + TABLE
        + " missing right after writing it"));
    if (!printed.equals(wanted)) {
      LOG.warning(() -> "nft lists table ip " + TABLE + " differently from how it was written; comparing with the"
          + " listed form from now on: " + printed);
      printedTable = printed;
    }
  }

  /** The table, one trimmed line each, as {@code nft list table} prints it. */
  private List<String> tableLines() {
    return List.of(
        "table ip " + TABLE + " {",
        "chain " + CHAIN + " {",
        "type filter hook postrouting priority 200; policy accept;",
        "oifname \"lo\" accept",
        "oifname \"" + settings.bridge() + "\" accept",
        "rt ipsec exists accept",
        "ip daddr " + settings.cluster() + " drop comment \"" + DROP_COMMENT + "\"",
        "}",
        "}");
  }

  /**
   * Our table as nft lists it; empty when there is none, or when this node has no nft or no
   * nf_tables for IPv4 to hold one (then the first write fails and says why).
   */
  private Optional<List<String>> nftTable() throws IptablesException {
    Iptables.Outcome listed = commands.attempt("nft", "list", "table", "ip", TABLE);
    if (listed.status() == 0) {
      return Optional.of(listed.output().lines().map(String::strip).filter(l -> !l.isEmpty()).toList());
    }
    if (listed.status() == -1 || listed.output().contains("No such file or directory")
        || listed.output().contains("not supported")) {
      return Optional.empty();
    }
    throw new IptablesException("'nft list table ip " + TABLE + "' failed with status " + listed.status() + ": "
        + listed.output().strip());
  }

  private void enforceXfrm(Ipv4Cidr block, List<String> repaired) throws IptablesException {
    Set<Policy> wanted = new LinkedHashSet<>(List.of(
        new Policy(block.toString(), block.toString(), "allow", ALLOW_PRIORITY),
        new Policy(block.toString(), settings.cluster().toString(), "block", BLOCK_PRIORITY)));
    List<Policy> found = ourPolicies();
    for (Policy policy : wanted) {
      if (!found.contains(policy)) {
        commands.run("", "ip", "xfrm", "policy", "update", "src", policy.src(), "dst",
            policy.dst(), "dir", "out", "priority", String.valueOf(policy.priority()), "action", policy.action());
        repaired.add("xfrm/out: policy missing: " + policy);
      }
    }
    for (Policy policy : found) {
      if (!wanted.contains(policy) && wanted.stream().noneMatch(w -> w.sameSelector(policy))) {
        commands.run("", "ip", "xfrm", "policy", "delete", "src", policy.src(), "dst",
            policy.dst(), "dir", "out");
        repaired.add("xfrm/out: policy not ours any more: " + policy);
      }
    }
  }

  /** The out policies with our two priorities, whoever wrote them. */
  private List<Policy> ourPolicies() throws IptablesException {
    Iptables.Outcome listed = commands.attempt("ip", "xfrm", "policy", "list", "dir", "out");
    if (listed.status() != 0) {
      if (listed.status() == -1) {
        return List.of(); // no ip here, so no policy of ours either
      }
      throw new IptablesException("'ip xfrm policy list dir out' failed with status " + listed.status() + ": "
          + listed.output().strip());
    }
    List<Policy> out = new ArrayList<>();
    String src = null;
    String dst = null;
    for (String line : listed.output().lines().toList()) {
      String[] w = line.strip().split("\\s+");
      if (line.startsWith("src ") && w.length >= 4) {
        src = w[1];
        dst = w[3];
      } else if (src != null && line.strip().startsWith("dir out")) {
        String given = value(w, "action");
        String action = given == null ? "allow" : given; // ip prints no action for allow
        String priority = value(w, "priority");
        if (priority != null
            && (priority.equals(String.valueOf(ALLOW_PRIORITY)) || priority.equals(String.valueOf(BLOCK_PRIORITY)))) {
          out.add(new Policy(src, dst, action, Integer.parseInt(priority)));
        }
        src = null;
      }
    }
    return out;
  }

  private static String value(String[] words, String key) {
    for (int i = 0; i + 1 < words.length; i++) {
      if (words[i].equals(key)) {
        return words[i + 1];
      }
    }
    return null;
  }

  private void changeTo(Kind now, String why) {
    if (now != kind) {
      Kind before = kind;
      kind = now;
      if (now == Kind.NFTABLES) {
        LOG.info(() -> "guard after NAT: nftables table ip " + TABLE + (before == null ? "" : " (was " + before + ")"));
      } else {
        LOG.warning(() -> "guard after NAT: " + why);
      }
    }
  }

  private static String firstLine(String text) {
    String s = text == null ? "" : text.strip();
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  /** One XFRM out policy, as {@code ip xfrm policy list} shows it. */
  record Policy(String src, String dst, String action, int priority) {
    boolean sameSelector(Policy other) {
      return src.equals(other.src) && dst.equals(other.dst);
    }

    @Override
    public String toString() {
      return "src " + src + " dst " + dst + " dir out priority " + priority + " action " + action;
    }
  }
}

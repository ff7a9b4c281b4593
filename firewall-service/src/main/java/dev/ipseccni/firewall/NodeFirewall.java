package dev.ipseccni.firewall;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.logging.Logger;

/**
 * This node's chains: compares what iptables holds with what it should hold and repairs the
 * difference in one iptables-restore --noflush, touching only our chains and our jumps.
 * Blocking; one instance per node, used from one thread at a time.
 *
 * <p>A foreign rule found above one of our jumps (Docker's DOCKER-USER, say) is answered once by
 * moving our jump back to the top; if the same foreign rules show up above it again, the owner of
 * those rules evidently wants them first, so it is reported and left alone instead of fought.
 */
public final class NodeFirewall {
  private static final Logger LOG = Logger.getLogger(NodeFirewall.class.getName());

  private final FirewallSettings settings;
  private final Iptables iptables;
  private final GuardAfterNat guardAfterNat;
  /** Foreign rules above a jump that we already moved our jump above once. */
  private final Set<String> movedAbove = new HashSet<>();
  /** Rules as this iptables prints them, where that differs from how we wrote them. */
  private final Map<List<String>, List<String>> printedForm = new HashMap<>();
  /** Rule lists already read back once after writing them; their printed form is known. */
  private final Set<List<String>> readBack = new HashSet<>();

  public NodeFirewall(FirewallSettings settings) {
    List<String> errors = settings.errors();
    if (!errors.isEmpty()) {
      throw new IllegalArgumentException("firewall settings: " + String.join("; ", errors));
    }
    this.settings = settings;
    this.iptables = Iptables.of(settings);
    this.guardAfterNat = new GuardAfterNat(settings, iptables);
  }

  /** Removes exactly our chains and every jump to them; everything else stays as it is. */
  public static void uninstall(FirewallSettings settings) throws IptablesException {
    new NodeFirewall(settings).uninstall();
  }

  public FirewallSettings settings() {
    return settings;
  }

  /** Asserts the chains for the given own block (empty: the guard alone) and says what it repaired. */
  public Enforcement enforce(Optional<Ipv4Cidr> ownBlock) throws IptablesException {
    return enforce(ownBlock, Map.of());
  }

  /** As {@link #enforce(Optional)}, the control plane closed to the denied nodes' addresses (by node name). */
  public Enforcement enforce(Optional<Ipv4Cidr> ownBlock, Map<String, String> deniedNodes) throws IptablesException {
    List<String> repaired = new ArrayList<>();
    boolean guarded = false;
    if (settings.datapath() == Datapath.KERNEL && ownBlock.isPresent()) {
      guarded = guardAfterNat.enforce(ownBlock.get(), repaired) != GuardAfterNat.Kind.NONE;
    }
    List<OwnChain> desired = OwnChains.render(settings, ownBlock, guarded, deniedNodes);
    Map<String, SavedTable> saved = saveTables(desired);
    List<String> notRepaired = new ArrayList<>();
    Map<String, StringBuilder> scripts = new LinkedHashMap<>();
    for (OwnChain chain : desired) {
      SavedTable table = saved.get(chain.table());
      StringBuilder script = scripts.computeIfAbsent(chain.table(), t -> new StringBuilder());
      compareChain(chain, table, repaired, script);
      compareJump(chain, table, repaired, notRepaired, script);
    }
    if (!repaired.isEmpty()) {
      apply(scripts);
      if (!readBack.containsAll(desired.stream().map(OwnChain::rules).toList())) {
        learnPrintedForm(desired);
      }
      LOG.info(() -> "firewall repaired: " + String.join("; ", repaired));
    }
    List<String> asserted = new ArrayList<>(desired.stream().map(OwnChain::label).toList());
    if (guarded) {
      guardAfterNat.label().ifPresent(asserted::add);
    }
    return new Enforcement(asserted, repaired, notRepaired);
  }

  /**
   * The own block that the chains in place were asserted for, by an earlier run of the
   * agent: read from the NAT chain's first "-s BLOCK -d CLUSTER … -j RETURN" rule ("pod to pod
   * on the bridge"; "pod addresses stay inside the cluster" in agents before 0.1). Empty
   * when there are no chains of ours or they hold no block.
   */
  public Optional<Ipv4Cidr> blockInPlace() throws IptablesException {
    SavedTable nat = iptables.save().get("nat");
    if (nat == null) {
      return Optional.empty();
    }
    for (String rule : nat.rules(OwnChains.NAT_CHAIN)) {
      java.util.regex.Matcher m = IN_PLACE_BLOCK.matcher(rule);
      if (m.find()) {
        return Ipv4Cidr.parse(m.group(1));
      }
    }
    return Optional.empty();
  }

  private static final java.util.regex.Pattern IN_PLACE_BLOCK =
      java.util.regex.Pattern.compile("^-s (\\S+) -d \\S+ .*-j RETURN$");

  /**
   * Removes exactly our chains, every jump to them and the guard after NAT (our nftables table,
   * our two XFRM policies); everything else stays as it is.
   */
  public void uninstall() throws IptablesException {
    List<OwnChain> ours = OwnChains.render(settings, Optional.empty());
    Map<String, SavedTable> saved = saveTables(ours);
    Map<String, StringBuilder> scripts = new LinkedHashMap<>();
    for (OwnChain chain : ours) {
      SavedTable table = saved.get(chain.table());
      StringBuilder script = scripts.computeIfAbsent(chain.table(), t -> new StringBuilder());
      table.chains().forEach((name, rules) -> {
        for (String rule : rules) {
          if (SavedTable.jumpsTo(rule, chain.name())) {
            script.append("-D ").append(name).append(' ').append(rule).append('\n');
          }
        }
      });
    }
    for (OwnChain chain : ours) {
      if (saved.get(chain.table()).chain(chain.name()).isPresent()) {
        scripts.get(chain.table()).append("-F ").append(chain.name()).append('\n')
            .append("-X ").append(chain.name()).append('\n');
      }
    }
    apply(scripts);
    guardAfterNat.uninstall();
  }

  /** Our chains, jumps to them and guard after NAT still in place: empty after a complete {@link #uninstall}. */
  public List<String> leftovers() throws IptablesException {
    List<OwnChain> ours = OwnChains.render(settings, Optional.empty());
    Map<String, SavedTable> saved = saveTables(ours);
    List<String> left = new ArrayList<>();
    for (OwnChain chain : ours) {
      SavedTable table = saved.get(chain.table());
      if (table.chain(chain.name()).isPresent()) {
        left.add("chain " + chain.table() + "/" + chain.name());
      }
      table.chains().forEach((name, rules) -> {
        for (String rule : rules) {
          if (SavedTable.jumpsTo(rule, chain.name())) {
            left.add("jump " + chain.table() + "/" + name + ": " + rule);
          }
        }
      });
    }
    left.addAll(guardAfterNat.leftovers());
    return left;
  }

  private void compareChain(OwnChain chain, SavedTable table, List<String> repaired, StringBuilder script) {
    Optional<List<String>> found = table.chain(chain.name());
    List<String> expected = printedForm.getOrDefault(chain.rules(), chain.rules());
    if (found.isPresent() && found.get().equals(expected)) {
      return;
    }
    if (found.isEmpty()) {
      repaired.add(chain.label() + ": chain missing");
    } else {
      List<String> present = found.get();
      for (String rule : expected) {
        if (!present.contains(rule)) {
          repaired.add(chain.label() + ": rule missing: " + rule);
        }
      }
      for (String rule : present) {
        if (!expected.contains(rule)) {
          repaired.add(chain.label() + ": rule not ours: " + rule);
        }
      }
      if (present.size() == expected.size() && present.containsAll(expected)) {
        repaired.add(chain.label() + ": rules out of order");
      } else if (present.size() != expected.size() && new HashSet<>(present).equals(new HashSet<>(expected))) {
        repaired.add(chain.label() + ": rules duplicated");
      }
    }
    // Declaring a chain in a --noflush restore empties it, so the chain is replaced in one step.
    script.append(':').append(chain.name()).append(" - [0:0]\n");
    for (String rule : chain.rules()) {
      script.append("-A ").append(chain.name()).append(' ').append(rule).append('\n');
    }
  }

  private void compareJump(OwnChain chain, SavedTable table, List<String> repaired, List<String> notRepaired,
      StringBuilder script) {
    List<String> hookRules = table.rules(chain.hook());
    List<Integer> jumps = new ArrayList<>();
    for (int i = 0; i < hookRules.size(); i++) {
      if (SavedTable.jumpsTo(hookRules.get(i), chain.name())) {
        jumps.add(i);
      }
    }
    String hook = chain.table() + "/" + chain.hook();
    if (jumps.isEmpty()) {
      repaired.add(hook + ": jump to " + chain.name() + " missing");
      script.append("-I ").append(chain.hook()).append(" 1 ").append(chain.jump()).append('\n');
      return;
    }
    int first = jumps.get(0);
    List<String> above = hookRules.subList(0, first);
    boolean moveUp = false;
    if (!above.isEmpty()) {
      String signature = hook + "\n" + String.join("\n", above);
      String described = hook + ": " + above.size() + " foreign rule(s) above the jump to " + chain.name()
          + ": " + String.join(" | ", above);
      if (movedAbove.add(signature)) {
        repaired.add(described);
        moveUp = true;
      } else {
        notRepaired.add(described + " (came back after we moved ours up once; left as it is)");
      }
    }
    if (jumps.size() > 1) {
      repaired.add(hook + ": " + jumps.size() + " jumps to " + chain.name() + ", one kept");
    }
    if (moveUp || jumps.size() > 1) {
      int keep = moveUp ? -1 : first;
      for (int index : jumps) {
        if (index != keep) {
          script.append("-D ").append(chain.hook()).append(' ').append(hookRules.get(index)).append('\n');
        }
      }
      if (moveUp) {
        script.append("-I ").append(chain.hook()).append(" 1 ").append(chain.jump()).append('\n');
      }
    }
  }

  private Map<String, SavedTable> saveTables(List<OwnChain> chains) throws IptablesException {
    Map<String, SavedTable> saved = new HashMap<>(iptables.save());
    for (OwnChain chain : chains) {
      saved.putIfAbsent(chain.table(), new SavedTable(chain.table(), Map.of()));
    }
    return saved;
  }

  private void apply(Map<String, StringBuilder> scripts) throws IptablesException {
    StringBuilder all = new StringBuilder();
    scripts.forEach((table, script) -> {
      if (script.length() > 0) {
        all.append('*').append(table).append('\n').append(script).append("COMMIT\n");
      }
    });
    if (all.length() > 0) {
      iptables.restore(all.toString());
    }
  }

  /**
   * Reads back the chains just written. Another iptables version may print a rule differently
   * from how we wrote it; without this every check would see drift and rewrite the chain.
   */
  private void learnPrintedForm(List<OwnChain> desired) throws IptablesException {
    Map<String, SavedTable> saved = saveTables(desired);
    for (OwnChain chain : desired) {
      readBack.add(chain.rules());
      List<String> printed = saved.get(chain.table()).rules(chain.name());
      if (!printed.equals(chain.rules()) && printed.size() == chain.rules().size()) {
        LOG.warning(() -> "iptables prints " + chain.label() + " differently from how it was written; "
            + "comparing with the printed form from now on: " + printed);
        printedForm.put(chain.rules(), printed);
      }
    }
  }
}

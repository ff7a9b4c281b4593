package dev.ipseccni.cni;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Ensures the node's bridge (cni0) exists, is up, has the MTU and carries the gateway
 * address of the node's block, before any pod is attached: the agent calls it at start
 * once IPAM knows the block. Idempotent. Blocks (it execs {@code ip}): call it from a worker.
 */
public final class NodeBridge {
  private final String bridgeName;
  private final List<String> commandPrefix;
  private final ProcessSpawner spawner;

  /**
   * @param commandPrefix what runs {@code ip} in the node's network namespace: empty on a
   *     real node, e.g. [ip, netns, exec, NODE] in the netns lab
   * @param spawner what runs {@code ip}: the gateway's ({@link CniGateway#spawner()})
   */
  public NodeBridge(String bridgeName, List<String> commandPrefix, ProcessSpawner spawner) {
    this.bridgeName = bridgeName;
    this.commandPrefix = List.copyOf(commandPrefix);
    this.spawner = spawner;
  }

  /** {@code ip} forked from the JVM, without a spawner. */
  public NodeBridge(String bridgeName, List<String> commandPrefix) {
    this(bridgeName, commandPrefix, ProcessSpawner.direct());
  }

  /** @param gatewayCidr the gateway address with the block's prefix, e.g. 10.128.1.1/24 */
  public void ensure(String gatewayCidr, int mtu) {
    if (!ip("link", "show", "dev", bridgeName).ok()) {
      BridgeDelegate.Outcome added = ip("link", "add", bridgeName, "type", "bridge");
      if (!added.ok() && !ip("link", "show", "dev", bridgeName).ok()) {
        throw new CniError(CniError.DATAPATH_FAILED, "cannot create bridge " + bridgeName, added.stderr().strip());
      }
    }
    // A bridge whose MAC was never set takes the lowest MAC of its ports, and changes it as pods
    // come and go: a pod would keep sending to a gateway MAC that is gone until its ARP entry
    // expires. Setting the address it has pins it (the reference bridge plugin does the same
    // for the bridges it creates).
    must(ip("link", "set", "dev", bridgeName, "address", macOf(bridgeName)), "pin the MAC of " + bridgeName);
    must(ip("link", "set", "dev", bridgeName, "mtu", Integer.toString(mtu), "up"), "bring up " + bridgeName);
    // replace, not add: a second start must not fail on the address it set the first time.
    must(ip("addr", "replace", gatewayCidr, "dev", bridgeName), "give " + bridgeName + " " + gatewayCidr);
  }

  private String macOf(String link) {
    BridgeDelegate.Outcome show = ip("-o", "link", "show", "dev", link);
    java.util.regex.Matcher mac = java.util.regex.Pattern.compile("link/ether ([0-9a-f]{2}(?::[0-9a-f]{2}){5})")
        .matcher(show.stdout());
    if (!show.ok() || !mac.find()) {
      throw new CniError(CniError.DATAPATH_FAILED, "cannot read the MAC of " + link, show.stderr().strip());
    }
    return mac.group(1);
  }

  /** True when the bridge exists and carries the address (for readiness reports). */
  public boolean carries(String gatewayCidr) {
    BridgeDelegate.Outcome show = ip("-o", "addr", "show", "dev", bridgeName);
    return show.ok() && show.stdout().contains(" " + gatewayCidr + " ");
  }

  private BridgeDelegate.Outcome ip(String... args) {
    List<String> argv = new ArrayList<>(commandPrefix);
    argv.add("ip");
    argv.addAll(List.of(args));
    return spawner.run(argv, Map.of(), "", Duration.ofSeconds(BridgeDelegate.TIMEOUT_SECONDS));
  }

  private static void must(BridgeDelegate.Outcome outcome, String what) {
    if (!outcome.ok()) {
      throw new CniError(CniError.DATAPATH_FAILED, "cannot " + what, outcome.stderr().strip());
    }
  }
}

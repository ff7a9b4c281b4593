package dev.ipseccni.agent;

import dev.ipseccni.bus.IpPrefix;
import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.PeerView;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.NodeBlockLease;
import dev.ipseccni.cni.NodeBridge;
import dev.ipseccni.ipam.NodeBlocks;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.MessageConsumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Keeps the node's bridge (cni0) up with the gateway address of the node's block, from
 * the moment the block is known: before kubelet's first pod, and before charon installs
 * routes whose source address must be inside the block (the original sample created cni0
 * by hand before kubelet and strongSwan for this reason). Re-asserted on every renewal
 * of the lease, so a deleted bridge comes back.
 */
final class NodeBridgeKeeper extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(NodeBridgeKeeper.class.getName());

  private final String node;
  private final EventPublisher events;
  private final NodeBridge bridge;
  private final int mtu;
  private final Runnable onFirstBridge;
  private volatile String gatewayCidr = "";
  private volatile String problem = "the node's block is not known yet";
  private boolean announced;
  /** The one view of block leases; the keeper follows this node's own lease in it. */
  private final PeerView peers;
  private PeerView.Follower peerFollower;
  private NodeBlockLease lastOwn;

  NodeBridgeKeeper(EventPublisher events, NodeBridge bridge, int mtu, Runnable onFirstBridge) {
    this.node = events.node();
    this.events = events;
    this.bridge = bridge;
    this.mtu = mtu;
    this.onFirstBridge = onFirstBridge;
    this.peers = new PeerView(node, java.time.Duration.ofMinutes(10)); // the own lease never expires in it
  }

  static String gatewayCidr(String block) {
    IpPrefix prefix = IpPrefix.parse(block);
    return NodeBlocks.gateway(prefix) + "/" + prefix.prefixLength();
  }

  @Override
  public Future<?> start() {
    var bus = vertx.eventBus();
    MessageConsumer<?> status = bus.consumer(Addresses.nodeStatus(node, Addresses.BRIDGE), m -> m.reply(status()));
    return status.completion().compose(x -> {
      // every change of the own lease, its renewals included (a deleted bridge comes back)
      peerFollower = PeerView.follow(vertx, events, Addresses.BRIDGE, peers, PeerView.DEFAULT_RESYNC,
          change -> peers.own().filter(own -> !own.equals(lastOwn)).ifPresent(this::onLease));
      return peerFollower.started();
    });
  }

  @Override
  public Future<?> stop() {
    return peerFollower == null ? Future.succeededFuture() : peerFollower.close();
  }

  ComponentStatus status() {
    return problem.isEmpty() ? ComponentStatus.ready(Addresses.BRIDGE) : ComponentStatus.notReady(Addresses.BRIDGE, problem);
  }

  private void onLease(NodeBlockLease lease) {
    lastOwn = lease;
    String wanted = gatewayCidr(lease.block());
    vertx.executeBlocking(() -> {
      bridge.ensure(wanted, mtu);
      return wanted;
    }, false).onComplete(done -> {
      if (done.succeeded()) {
        if (!wanted.equals(gatewayCidr)) {
          LOG.info(() -> "bridge carries the gateway " + wanted + " of block " + lease.block());
        }
        gatewayCidr = wanted;
        problem = "";
        if (!announced) {
          announced = true;
          onFirstBridge.run();
        }
      } else {
        problem = "cannot set up the bridge with " + wanted + ": " + done.cause().getMessage();
        LOG.log(Level.WARNING, problem);
      }
    });
  }
}

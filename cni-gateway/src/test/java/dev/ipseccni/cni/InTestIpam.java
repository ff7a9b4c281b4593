package dev.ipseccni.cni;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.CheckRequest;
import dev.ipseccni.bus.message.ComponentStatus;
import dev.ipseccni.bus.message.Failures;
import dev.ipseccni.bus.message.GcRequest;
import dev.ipseccni.bus.message.GcResult;
import dev.ipseccni.bus.message.ReleaseRequest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.EventBus;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A small stand-in for the node's IPAM service, answering its bus requests with the
 * contract's records from one /24. The gateway tests use it so they depend on nothing but
 * the bus contract; the real IPAM service is wired in by the agent and the e2e tests.
 */
final class InTestIpam {
  static final String BLOCK = "10.128.1.0/24";
  static final String GATEWAY = "10.128.1.1";

  private final Map<String, Allocation> allocations = new ConcurrentHashMap<>();
  private int next = 2;
  volatile boolean ready = true;

  Future<Void> register(Vertx vertx, String node) {
    EventBus bus = vertx.eventBus();
    List<Future<Void>> registered = new ArrayList<>();
    registered.add(bus.<AllocateRequest>consumer(Addresses.ipamAllocate(node), msg -> {
      AllocateRequest r = msg.body();
      if (!ready) {
        msg.fail(Failures.TRY_AGAIN_LATER, "test IPAM not ready");
        return;
      }
      String key = key(r.network(), r.containerId(), r.ifName());
      if (r.requestsAnAddress()) {
        // The contract only (exactly that address, or 102); the real IPAM's reasons are tested in ipam-service.
        String wanted = r.requestedAddress() + "/24";
        Allocation held = allocations.get(key);
        boolean taken = allocations.values().stream().anyMatch(a -> a.address().equals(wanted) && a != held);
        if (!r.requestedAddress().startsWith("10.128.1.") || taken || (held != null && !held.address().equals(wanted))) {
          msg.fail(Failures.REQUESTED_ADDRESS_UNAVAILABLE, "test IPAM: requested address " + r.requestedAddress()
              + " is not available to " + r.containerId());
          return;
        }
        msg.reply(allocations.computeIfAbsent(key,
            k -> new Allocation(r.network(), r.containerId(), r.ifName(), wanted, GATEWAY, BLOCK)));
        return;
      }
      msg.reply(allocations.computeIfAbsent(key,
          k -> new Allocation(r.network(), r.containerId(), r.ifName(), "10.128.1." + next++ + "/24", GATEWAY,
              BLOCK)));
    }).completion());
    registered.add(bus.<ReleaseRequest>consumer(Addresses.ipamRelease(node), msg -> {
      ReleaseRequest r = msg.body();
      msg.reply(allocations.remove(key(r.network(), r.containerId(), r.ifName())));
    }).completion());
    registered.add(bus.<CheckRequest>consumer(Addresses.ipamCheck(node), msg -> {
      CheckRequest r = msg.body();
      Allocation a = allocations.get(key(r.network(), r.containerId(), r.ifName()));
      if (a == null) {
        msg.fail(Failures.UNKNOWN_CONTAINER, "no allocation for " + r.containerId() + "/" + r.ifName());
      } else {
        msg.reply(a);
      }
    }).completion());
    registered.add(bus.<GcRequest>consumer(Addresses.ipamGc(node), msg -> {
      GcRequest r = msg.body();
      List<Allocation> released = new ArrayList<>();
      allocations.values().removeIf(a -> {
        boolean valid = !a.network().equals(r.network()) || r.validAttachments().stream()
            .anyMatch(v -> v.containerId().equals(a.containerId()) && v.ifName().equals(a.ifName()));
        if (!valid) {
          released.add(a);
        }
        return !valid;
      });
      msg.reply(new GcResult(released));
    }).completion());
    registered.add(bus.consumer(Addresses.nodeStatus(node, Addresses.IPAM), msg -> msg.reply(ready
        ? ComponentStatus.ready(Addresses.IPAM)
        : ComponentStatus.notReady(Addresses.IPAM, "no block lease yet"))).completion());
    return Future.all(registered).mapEmpty();
  }

  boolean holds(String network, String containerId, String ifName) {
    return allocations.containsKey(key(network, containerId, ifName));
  }

  String addressOf(String network, String containerId, String ifName) {
    Allocation a = allocations.get(key(network, containerId, ifName));
    return a == null ? "" : a.address();
  }

  int count() {
    return allocations.size();
  }

  private static String key(String network, String containerId, String ifName) {
    return network + "/" + containerId + "/" + ifName;
  }
}

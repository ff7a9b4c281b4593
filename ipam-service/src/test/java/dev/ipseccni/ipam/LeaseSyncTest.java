package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.message.LeaseEvent;
import dev.ipseccni.bus.message.LeaseSync;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** A service that starts after the lease was announced asks again and gets it. */
class LeaseSyncTest {

  @Test
  void leaseSyncIsAnsweredWithTheHeldLease() throws Exception {
    int port = IpamServiceTest.freePort();
    ClusterBootstrap.JoinedCluster node = IpamServiceTest.await(ClusterBootstrap.join(
        new ClusterSettings("ipt-sync-" + UUID.randomUUID(), "ipt-s", "127.0.0.1", port, 0,
            List.of("127.0.0.1:" + port), false, ClusterSettings.Timing.DEFAULT),
        List.of(BlockLeases.customizer(1))));
    try {
      List<Event> renewed = new CopyOnWriteArrayList<>();
      IpamServiceTest.await(node.vertx().eventBus()
          .<Event>consumer(Addresses.LEASE_RENEWED, m -> renewed.add(m.body())).completion());
      // renewals an hour apart: a lease.renewed seen now can only be the answer to the sync
      IpamSettings settings = IpamSettings.defaults("ipt-s", "127.0.0.1", "ipsec-cni", 1)
          .withJournalDir(Files.createTempDirectory("ipt-sync"))
          .withTimings(Duration.ofHours(1), Duration.ofHours(4), Duration.ofMillis(200))
          .withPreferredBlock("10.128.9.0/24");
      IpamService service = new IpamService(settings, new EventPublisher(node.vertx().eventBus(), "ipt-s", 1),
          node.hazelcast());
      IpamServiceTest.await(node.vertx().deployVerticle(service));
      Poll.until("lease held", Duration.ofSeconds(30), () -> service.view().ready(), () -> service.view().toString());
      assertEquals(List.of(), renewed);

      new EventPublisher(node.vertx().eventBus(), "ipt-other", 1).publish(Addresses.LEASE_SYNC, new LeaseSync("tunnel"));
      Poll.until("lease re-announced", Duration.ofSeconds(10), () -> !renewed.isEmpty(), renewed::toString);
      assertEquals("10.128.9.0/24", ((LeaseEvent) renewed.get(0).payload()).lease().block());
      assertEquals("ipt-s", renewed.get(0).node());
    } finally {
      IpamServiceTest.await(node.vertx().close());
    }
  }
}

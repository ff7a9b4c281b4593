package dev.ipseccni.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.message.LeaseSnapshot;
import dev.ipseccni.bus.message.NodeBlockLease;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.Message;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** When a follower's view may be trusted to say who is gone: after the first snapshot of the lease map. */
class PeerViewFollowerTest {
  private static final Duration INTERVAL = Duration.ofMinutes(10);
  private Vertx vertx;
  private EventPublisher events;

  @BeforeEach
  void vertx() {
    vertx = Vertx.vertx();
    BusCodecs.register(vertx.eventBus());
    events = new EventPublisher(vertx.eventBus(), "node1", 1);
  }

  @AfterEach
  void close() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  private static <T> T await(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  /** Starts a follower on a context of its own, as a service does; returns it once started. */
  private PeerView.Follower follow(PeerView view) throws Exception {
    return await(vertx.<PeerView.Follower>executeBlocking(() -> null, false)
        .compose(x -> {
          PeerView.Follower f = PeerView.follow(vertx, events, "test", view, INTERVAL, change -> { });
          return f.started().map(f);
        }));
  }

  private BlockingQueue<Message<Object>> snapshotRequests() throws Exception {
    BlockingQueue<Message<Object>> requests = new LinkedBlockingQueue<>();
    await(vertx.eventBus().<Object>consumer(Addresses.LEASE_SNAPSHOT, requests::add).completion());
    return requests;
  }

  @Test
  void syncedOnlyOnceTheSnapshotIsApplied() throws Exception {
    BlockingQueue<Message<Object>> requests = snapshotRequests();
    PeerView view = new PeerView("node1", Duration.ofMinutes(10));
    PeerView.Follower follower = follow(view);
    Message<Object> request = requests.poll(30, TimeUnit.SECONDS);
    assertNotNull(request, "the follower asks for a snapshot at start");
    assertFalse(follower.isSynced(), "synced before any snapshot came");

    NodeBlockLease peer = new NodeBlockLease("node2", "192.0.2.12", "10.128.2.0/24", 1, System.currentTimeMillis());
    request.reply(new LeaseSnapshot(List.of(peer), System.currentTimeMillis()));
    await(follower.synced());
    assertEquals(List.of(peer), view.leases(), "the snapshot is in the view when synced completes");
  }

  @Test
  void aFailedFirstSnapshotIsAskedForAgainWithoutWaitingForTheInterval() throws Exception {
    BlockingQueue<Message<Object>> requests = snapshotRequests();
    PeerView.Follower follower = follow(new PeerView("node1", Duration.ofMinutes(10)));
    requests.poll(30, TimeUnit.SECONDS).fail(503, "the lease map cannot be read yet");
    Message<Object> again = requests.poll(30, TimeUnit.SECONDS);
    assertNotNull(again, "a second snapshot request, well before the 10-minute interval");
    assertFalse(follower.isSynced(), "a failed snapshot does not sync the view");
    again.reply(new LeaseSnapshot(List.of(), System.currentTimeMillis()));
    await(follower.synced());
  }

  @Test
  void noIpamAnywhereMeansEventsAreAllThereIs() throws Exception {
    PeerView.Follower follower = follow(new PeerView("node1", Duration.ofMinutes(10)));
    await(follower.synced());
    assertTrue(follower.isSynced());
  }
}

package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.ClusterBootstrap;
import dev.ipseccni.bus.ClusterSettings;
import dev.ipseccni.bus.EventPublisher;
import dev.ipseccni.bus.TestPorts;
import dev.ipseccni.bus.message.AllocateRequest;
import dev.ipseccni.bus.message.Allocation;
import dev.ipseccni.bus.message.CheckRequest;
import dev.ipseccni.bus.message.Failures;
import io.vertx.core.Future;
import io.vertx.core.eventbus.ReplyException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The IPAM service with its journal on a real, small tmpfs that the test fills up: an ADD
 * whose record cannot be written fails with JOURNAL_FAILED and leaves no allocation behind;
 * every ADD that was acknowledged is in the journal file; once space is back, ADD works.
 * Needs root (mount); skipped otherwise.
 */
class JournalDiskFullTest {
  private static final String NET = "ipsec-cni";
  private static final String NODE = "jdf-a";

  private Path mountPoint;
  private boolean mounted;
  private ClusterBootstrap.JoinedCluster cluster;
  private IpamService service;

  @BeforeEach
  void mountSmallTmpfsAndStartIpam() throws Exception {
    mountPoint = Files.createTempDirectory("ipam-disk-full");
    Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mountPoint.toString())
        .redirectErrorStream(true).start();
    String output = new String(mount.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    mounted = mount.waitFor() == 0;
    Assertions.assertTrue(mounted, "needs root to mount a tmpfs: " + output.strip());

    int port = TestPorts.free();
    cluster = await(ClusterBootstrap.join(new ClusterSettings("jdf-" + UUID.randomUUID(), NODE, "127.0.0.1", port, 0,
        List.of("127.0.0.1:" + port), false, ClusterSettings.Timing.DEFAULT), List.of(BlockLeases.customizer(1))));
    service = new IpamService(IpamSettings.defaults(NODE, "127.0.0.1", NET, 1)
        .withJournalDir(mountPoint.resolve("journal"))
        .withTimings(Duration.ofMillis(500), Duration.ofSeconds(60), Duration.ofMillis(200)),
        new EventPublisher(cluster.vertx().eventBus(), NODE, 1), cluster.hazelcast());
    await(cluster.vertx().deployVerticle(service));
    Poll.until("ipam ready", Duration.ofSeconds(60), () -> service.view().ready(), () -> service.view().toString());
  }

  @AfterEach
  void stopAndUnmount() throws Exception {
    try {
      if (cluster != null) {
        await(cluster.vertx().close());
      }
    } finally {
      if (mounted) {
        new ProcessBuilder("umount", mountPoint.toString()).inheritIO().start().waitFor();
      }
      Files.deleteIfExists(mountPoint);
    }
  }

  static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  private Future<Allocation> add(String container) {
    return cluster.vertx().eventBus().<Allocation>request(Addresses.ipamAllocate(NODE),
        new AllocateRequest(NET, container, "eth0")).map(m -> m.body());
  }

  private Future<Allocation> check(String container) {
    return cluster.vertx().eventBus().<Allocation>request(Addresses.ipamCheck(NODE),
        new CheckRequest(NET, container, "eth0")).map(m -> m.body());
  }

  private String journal() throws IOException {
    return Files.readString(mountPoint.resolve("journal").resolve(AllocationJournal.FILE_NAME));
  }

  /** Writes a file until the filesystem is full; returns it. */
  private Path fillUp() throws IOException {
    Path filler = mountPoint.resolve("filler");
    byte[] chunk = new byte[512];
    try (OutputStream out = Files.newOutputStream(filler)) {
      while (true) {
        out.write(chunk);
        out.flush();
      }
    } catch (IOException full) {
      assertTrue(String.valueOf(full.getMessage()).contains("No space left"), String.valueOf(full));
    }
    return filler;
  }

  @Test
  void addOnAFullDiskFailsWithJournalFailedAcknowledgesNothingUnwrittenAndRecoversWhenSpaceIsBack()
      throws Exception {
    Allocation before = await(add("c-before"));
    Path filler = fillUp();

    // The journal's last page may still take a few records; the first ADD that needs a new page must fail.
    List<Allocation> acknowledged = new ArrayList<>();
    ReplyException refused = null;
    String refusedContainer = null;
    for (int i = 0; i < 200 && refused == null; i++) {
      String container = "c-full-" + i;
      try {
        acknowledged.add(await(add(container)));
      } catch (ExecutionException e) {
        refused = (ReplyException) e.getCause();
        refusedContainer = container;
      }
    }
    assertNotNull(refused, "200 ADDs on a full disk were all acknowledged");
    assertEquals(Failures.JOURNAL_FAILED, refused.failureCode(), refused.getMessage());
    assertTrue(refused.getMessage().contains("could not be written to the journal")
        && refused.getMessage().contains("No space left"), refused.getMessage());

    String journal = journal();
    assertTrue(journal.contains("\"" + before.containerId() + "\""));
    for (Allocation a : acknowledged) {
      assertTrue(journal.contains("\"" + a.containerId() + "\""), "acknowledged but not in the journal: " + a);
    }
    assertFalse(journal.contains("\"" + refusedContainer + "\""), "refused but journalled: " + refusedContainer);
    assertTrue(journal.endsWith("\n"), "the journal keeps whole lines");
    String unknown = refusedContainer;
    ExecutionException notHeld = assertThrows(ExecutionException.class, () -> await(check(unknown)));
    assertEquals(Failures.UNKNOWN_CONTAINER, ((ReplyException) notHeld.getCause()).failureCode(),
        "the refused ADD left an allocation behind");

    Files.delete(filler);
    Allocation after = await(add(refusedContainer));
    assertTrue(journal().contains("\"" + refusedContainer + "\""));
    assertFalse(acknowledged.stream().anyMatch(a -> a.address().equals(after.address())) || before.address()
        .equals(after.address()), "address handed out twice: " + after);
    assertEquals(after, await(check(refusedContainer)));
  }
}

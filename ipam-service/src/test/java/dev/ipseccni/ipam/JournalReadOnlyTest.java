package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
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
import dev.ipseccni.bus.message.ReleaseRequest;
import io.vertx.core.Future;
import io.vertx.core.eventbus.ReplyException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The IPAM journal's filesystem turns read-only under a running service, as ext4 does on a
 * disk error with {@code errors=remount-ro}: a real ext4 on a loop device, made read-only
 * through its {@code trigger_fs_error} switch. That is EROFS for root too, on the journal
 * file already open (a plain {@code mount -o remount,ro} is refused while a file is open
 * for writing). ADD and DEL then fail with JOURNAL_FAILED and acknowledge nothing; a
 * restart on the read-only directory fails with a clear error; once the filesystem is
 * mounted read-write again the service comes back with exactly the acknowledged
 * allocations and ADD works. Needs root, losetup and mkfs.ext4; skipped otherwise.
 */
class JournalReadOnlyTest {
  private static final String NET = "ipsec-cni";
  private static final String NODE = "jro-a";

  private Path work;
  private Path image;
  private Path mountPoint;
  private String loopDevice;
  private boolean mounted;
  private ClusterBootstrap.JoinedCluster cluster;
  private IpamSettings settings;
  private IpamService service;
  private String deploymentId;

  @BeforeEach
  void ext4OnALoopDeviceAndIpamOnIt() throws Exception {
    Assertions.assertTrue(run("id", "-u").strip().equals("0"), "needs root (losetup, mount)");
    Assertions.assertTrue(Files.isExecutable(Path.of("/usr/sbin/mkfs.ext4")) || Files.isExecutable(Path.of("/sbin/mkfs.ext4")),
        "needs mkfs.ext4");
    work = Files.createTempDirectory("ipam-read-only");
    image = work.resolve("journal.ext4");
    mountPoint = Files.createDirectory(work.resolve("mnt"));
    run("truncate", "-s", "8M", image.toString());
    run("mkfs.ext4", "-q", "-F", image.toString());
    loopDevice = run("losetup", "-f", "--show", image.toString()).strip();
    mount();
    Path trigger = triggerFile();
    Assertions.assertTrue(Files.exists(trigger), "this kernel has no " + trigger);

    int port = TestPorts.free();
    cluster = await(ClusterBootstrap.join(new ClusterSettings("jro-" + UUID.randomUUID(), NODE, "127.0.0.1", port, 0,
        List.of("127.0.0.1:" + port), false, ClusterSettings.Timing.DEFAULT), List.of(BlockLeases.customizer(1))));
    settings = IpamSettings.defaults(NODE, "127.0.0.1", NET, 1)
        .withJournalDir(mountPoint.resolve("journal"))
        .withTimings(Duration.ofMillis(500), Duration.ofSeconds(60), Duration.ofMillis(200));
    startIpam();
  }

  @AfterEach
  void stopUnmountDetach() throws Exception {
    try {
      if (cluster != null) {
        await(cluster.vertx().close());
      }
    } finally {
      try {
        if (mounted) {
          run("umount", mountPoint.toString());
        }
      } finally {
        if (loopDevice != null) {
          run("losetup", "-d", loopDevice);
        }
        if (work != null) {
          try (Stream<Path> files = Files.walk(work)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
              Files.deleteIfExists(p);
            }
          }
        }
      }
    }
  }

  private void mount() throws IOException, InterruptedException {
    run("mount", "-o", "errors=remount-ro", loopDevice, mountPoint.toString());
    mounted = true;
  }

  private Path triggerFile() {
    return Path.of("/sys/fs/ext4", Path.of(loopDevice).getFileName().toString(), "trigger_fs_error");
  }

  private void startIpam() throws Exception {
    service = new IpamService(settings, new EventPublisher(cluster.vertx().eventBus(), NODE, 1), cluster.hazelcast());
    deploymentId = await(cluster.vertx().deployVerticle(service));
    Poll.until("ipam ready", Duration.ofSeconds(60), () -> service.view().ready(), () -> service.view().toString());
  }

  private void stopIpam() throws Exception {
    await(cluster.vertx().undeploy(deploymentId));
  }

  static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  private static String run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException(String.join(" ", command) + " failed: " + output);
    }
    return output;
  }

  private Future<Allocation> add(String container) {
    return cluster.vertx().eventBus().<Allocation>request(Addresses.ipamAllocate(NODE),
        new AllocateRequest(NET, container, "eth0")).map(m -> m.body());
  }

  private Future<Object> del(String container) {
    return cluster.vertx().eventBus().request(Addresses.ipamRelease(NODE),
        new ReleaseRequest(NET, container, "eth0")).map(m -> m.body());
  }

  private Future<Allocation> check(String container) {
    return cluster.vertx().eventBus().<Allocation>request(Addresses.ipamCheck(NODE),
        new CheckRequest(NET, container, "eth0")).map(m -> m.body());
  }

  private static ReplyException refusal(Future<?> request) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> await(request));
    return (ReplyException) e.getCause();
  }

  private Set<String> held() {
    return service.view().allocations().stream().map(a -> a.containerId() + "=" + a.address())
        .collect(Collectors.toSet());
  }

  private String journal() throws IOException {
    return Files.readString(settings.journalDir().resolve(AllocationJournal.FILE_NAME));
  }

  @Test
  void aJournalTurnedReadOnlyFailsAddAndDelAcknowledgesNothingAndRecoversOnceWritable() throws Exception {
    Allocation kept = await(add("c-kept"));
    Allocation kept2 = await(add("c-kept-2"));

    Files.writeString(triggerFile(), "ipam journal test: filesystem error\n");
    IOException probe = assertThrows(IOException.class,
        () -> Files.writeString(mountPoint.resolve("probe"), "x"));
    assertTrue(String.valueOf(probe.getMessage()).contains("Read-only file system"), String.valueOf(probe));

    List<String> refusedContainers = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      String container = "c-ro-" + i;
      ReplyException refused = refusal(add(container));
      assertEquals(Failures.JOURNAL_FAILED, refused.failureCode(), refused.getMessage());
      assertTrue(refused.getMessage().contains("could not be written to the journal in " + settings.journalDir()),
          refused.getMessage());
      if (i == 0) {
        // the first refusal names the cause an operator can act on; later ones say the journal is unusable
        assertTrue(refused.getMessage().contains("Read-only file system"), refused.getMessage());
      }
      refusedContainers.add(container);
      ReplyException notHeld = refusal(check(container));
      assertEquals(Failures.UNKNOWN_CONTAINER, notHeld.failureCode(), container + " left an allocation in memory");
    }
    ReplyException delRefused = refusal(del("c-kept-2"));
    assertEquals(Failures.JOURNAL_FAILED, delRefused.failureCode(), delRefused.getMessage());
    assertEquals(kept2, await(check("c-kept-2")), "a DEL that could not be journalled released the address");
    assertEquals(Set.of("c-kept=" + kept.address(), "c-kept-2=" + kept2.address()), held(),
        "in memory while read-only: exactly the acknowledged allocations");

    // An agent restart while the directory is still read-only: the service does not start.
    stopIpam();
    IpamService onReadOnly = new IpamService(settings, new EventPublisher(cluster.vertx().eventBus(), NODE, 1),
        cluster.hazelcast());
    ExecutionException notStarted = assertThrows(ExecutionException.class,
        () -> await(cluster.vertx().deployVerticle(onReadOnly)));
    assertTrue(String.valueOf(notStarted.getCause()).contains("Read-only file system"), String.valueOf(notStarted));

    // The operator repairs the filesystem (here: unmount, mount again read-write).
    run("umount", mountPoint.toString());
    mounted = false;
    mount();
    startIpam();
    assertEquals(Set.of("c-kept=" + kept.address(), "c-kept-2=" + kept2.address()), held(),
        "after the restart: exactly the acknowledged allocations, nothing refused");
    String journal = journal();
    for (String refused : refusedContainers) {
      assertFalse(journal.contains("\"" + refused + "\""), "refused but journalled: " + refused);
    }

    Allocation after = await(add("c-ro-0"));
    assertNotEquals(kept.address(), after.address(), "address handed out twice");
    assertNotEquals(kept2.address(), after.address(), "address handed out twice");
    assertTrue(journal().contains("\"c-ro-0\""), "the ADD after the repair is journalled");
    await(del("c-kept-2"));
    assertEquals(Set.of("c-kept=" + kept.address(), "c-ro-0=" + after.address()), held());
  }
}

package dev.ipseccni.firewall;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.ipseccni.bus.Addresses;
import dev.ipseccni.bus.BusCodecs;
import dev.ipseccni.bus.Event;
import dev.ipseccni.bus.EventPublisher;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Measures, does not assert times: the cost of an assertion and of a check, and how long after
 * someone breaks the chains the repair is published, with the periodic check alone (default 5 s)
 * and with the ruleset monitor. Run by bench/firewall/run.sh; writes a Markdown table.
 */
@EnabledIfSystemProperty(named = "firewall.bench", matches = "true")
class DriftRepairBenchmark {
  private static final int RUNS = Integer.getInteger("firewall.bench.runs", 7);
  private static final Ipv4Cidr BLOCK = Ipv4Cidr.parse("10.128.1.0/24").orElseThrow();

  private final List<String> report = new ArrayList<>();

  @Test
  void measure() throws Exception {
    report.add("| measurement | runs | median | min | max |");
    report.add("| --- | --- | --- | --- | --- |");
    try (Netns ns = Netns.fresh("fw-bench")) {
      ns.restore(NodeFirewallTest.DOCKER_LIKE);
      FirewallSettings settings = FirewallSettings.defaults("node1").withCommandPrefix(ns.prefix())
          .withOwnBlock("10.128.1.0/24");
      assertionCosts(ns, settings);
      for (boolean monitor : List.of(false, true)) {
        FirewallSettings variant = monitor ? settings
            : settings.withCommands("iptables-restore", "iptables-save", List.of());
        repairLatency(ns, variant, monitor ? "nft monitor + 5 s check" : "5 s check only");
      }
    }
    String table = String.join("\n", report) + "\n";
    System.out.println(table);
    Path out = Path.of(System.getProperty("firewall.bench.out", "target/drift-repair.md"));
    Files.createDirectories(out.toAbsolutePath().getParent());
    Files.writeString(out, table);
  }

  private void assertionCosts(Netns ns, FirewallSettings settings) throws Exception {
    List<Long> install = new ArrayList<>();
    List<Long> check = new ArrayList<>();
    for (int i = 0; i < RUNS; i++) {
      NodeFirewall.uninstall(settings);
      NodeFirewall firewall = new NodeFirewall(settings);
      long start = System.nanoTime();
      firewall.enforce(Optional.of(BLOCK));
      install.add(System.nanoTime() - start);
      start = System.nanoTime();
      firewall.enforce(Optional.of(BLOCK));
      check.add(System.nanoTime() - start);
    }
    row("first assertion (iptables-save, iptables-restore, iptables-save to read back)", install);
    row("check with nothing to repair (one iptables-save)", check);
  }

  private void repairLatency(Netns ns, FirewallSettings settings, String variant) throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      BusCodecs.register(vertx.eventBus());
      BlockingQueue<Long> repairs = new LinkedBlockingQueue<>();
      vertx.eventBus().<Event>consumer(Addresses.FIREWALL_DRIFT, m -> repairs.add(System.nanoTime()))
          .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      EventPublisher publisher = new EventPublisher(vertx.eventBus(), "node1", System.currentTimeMillis());
      vertx.deployVerticle(new FirewallService(settings, publisher))
          .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      List<List<String>> tampers = List.of(
          List.of("iptables", "-D", "FORWARD", "-m", "comment", "--comment", "ipsec-cni", "-j", "IPSEC-CNI-FWD"),
          List.of("iptables", "-F", "IPSEC-CNI-FWD"),
          List.of("sh", "-c", "iptables -P FORWARD DROP && iptables -F FORWARD"));
      List<String> names = List.of("our FORWARD jump deleted", "our chain flushed",
          "FORWARD policy DROP + FORWARD flushed");
      for (int t = 0; t < tampers.size(); t++) {
        List<Long> latencies = new ArrayList<>();
        for (int i = 0; i < RUNS; i++) {
          repairs.clear();
          long start = System.nanoTime();
          ns.run(tampers.get(t).toArray(String[]::new));
          Long repaired = repairs.poll(30, TimeUnit.SECONDS);
          assertNotNull(repaired, "no repair within 30 s: " + names.get(t));
          latencies.add(repaired - start);
          ns.run("iptables", "-P", "FORWARD", "ACCEPT");
        }
        row(names.get(t) + " → repair published (" + variant + ")", latencies);
      }
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  private void row(String what, List<Long> nanos) {
    List<Long> sorted = new ArrayList<>(nanos);
    Collections.sort(sorted);
    report.add("| " + what + " | " + sorted.size() + " | " + ms(sorted.get(sorted.size() / 2)) + " | "
        + ms(sorted.get(0)) + " | " + ms(sorted.get(sorted.size() - 1)) + " |");
  }

  private static String ms(long nanos) {
    return String.format("%.1f ms", nanos / 1e6);
  }

}

package dev.ipseccni.ipam;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class IpamSettingsTest {
  private final IpamSettings good = IpamSettings.defaults("n1", "192.0.2.11", "ipsec-cni", 3);

  @Test
  void defaultsAreValid() {
    assertEquals(List.of(), good.validate());
    assertEquals(2, good.majority());
    assertEquals(256, good.blocks().blockCount());
  }

  @Test
  void eachBadValueIsReportedOnItsOwnLine() {
    IpamSettings bad = new IpamSettings("", "not-an-ip", "net", "10.128.0.0/16", 24,
        java.util.Optional.of("10.129.1.0/24"), Path.of("relative"), Duration.ofSeconds(30),
        Duration.ofSeconds(40), Duration.ofSeconds(1), 0, 100, Duration.ZERO);
    List<String> errors = bad.validate();
    assertEquals(7, errors.size(), String.join("\n", errors));
    assertTrue(errors.stream().anyMatch(e -> e.contains("preferredBlock") && e.contains("10.129.1.0/24")));
    assertTrue(errors.stream().anyMatch(e -> e.contains("grace period")));
    assertTrue(errors.stream().anyMatch(e -> e.contains("mirror delay") && e.contains("PT0S")));
  }

  @Test
  void mirrorDelayDefaultsToHalfASecondAndMustBeAtLeastAMillisecond() {
    assertEquals(Duration.ofMillis(500), good.mirrorDelay());
    assertEquals(List.of(), good.withMirrorDelay(Duration.ofMillis(1)).validate());
    assertEquals(List.of("address mirror delay: must be at least 1 ms, not PT0.0005S"),
        good.withMirrorDelay(Duration.ofNanos(500_000)).validate());
  }

  @Test
  void badCidrIsNamed() {
    List<String> errors = good.withNetwork("10.128.0.1/16", 24).validate();
    assertEquals(1, errors.size());
    assertTrue(errors.get(0).contains("10.128.0.1/16"), errors.get(0));
    assertEquals(1, good.withNetwork("10.128.0.0/16", 12).validate().size());
  }

  @Test
  void labPreferredBlockIsAccepted() {
    assertEquals(List.of(), good.withPreferredBlock("10.128.3.0/24").validate());
    assertEquals(1, good.withPreferredBlock("10.128.3.0/25").validate().size());
  }
}

package dev.ipseccni.firewall;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class IptablesTimeoutTest {

  @Test
  void aCommandThatHangsWithItsOutputOpenIsKilledAtTheTimeout() {
    // "sh -c 'sleep 120' save" stands in for an iptables-save stuck on a lock or a dead
    // kernel: it keeps stdout open and never exits by itself within the test
    Iptables hung = new Iptables(List.of("sh", "-c", "sleep 120"), "iptables-save", "iptables-restore", 300);
    IptablesException e = assertThrows(IptablesException.class, hung::save);
    assertTrue(e.getMessage().contains("did not finish within 300 ms; killed it"), e.getMessage());
  }
}

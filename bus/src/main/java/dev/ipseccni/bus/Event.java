package dev.ipseccni.bus;

import dev.ipseccni.bus.message.Payload;
import java.util.Objects;

/**
 * The envelope of every published event.
 *
 * @param address the address it was published to, which names its kind (e.g. lease.acquired)
 * @param node the node that published it
 * @param incarnation start time (ms) of the publishing agent process; sequences restart with it
 * @param seq per-node sequence number, 1, 2, 3, … within one incarnation, so observers can see gaps
 * @param timestampMillis wall-clock time of publication
 * @param payload what happened
 */
public record Event(String address, String node, long incarnation, long seq, long timestampMillis, Payload payload) {
  public Event {
    Objects.requireNonNull(address, "address");
    Objects.requireNonNull(node, "node");
    Objects.requireNonNull(payload, "payload");
  }
}

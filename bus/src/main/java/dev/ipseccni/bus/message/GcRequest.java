package dev.ipseccni.bus.message;

import java.util.List;

/** Release every allocation of the network whose attachment is not in the valid list. */
public record GcRequest(String network, List<Attachment> validAttachments) {
  public GcRequest {
    validAttachments = List.copyOf(validAttachments);
  }

  public record Attachment(String containerId, String ifName) {}
}

package dev.ipseccni.tunnel.vici;

/** An event charon pushed on a registered name (e.g. ike-updown, child-updown). */
public record ViciEvent(String name, ViciMessage message) {}

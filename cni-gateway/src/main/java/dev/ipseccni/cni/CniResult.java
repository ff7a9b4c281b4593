package dev.ipseccni.cni;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * An ADD result, independent of the version it is written in. {@link #toJson} writes it
 * in the version the runtime asked for: 0.3.x/0.4.0 carry {@code ips[].version}, 1.0.0
 * drops it, and only 1.1.0 may carry an interface {@code mtu} (libcni 1.1 rejects a
 * 1.1.0 result, so an older runtime must get the older shape).
 */
public record CniResult(List<Interface> interfaces, List<Ip> ips, List<Route> routes, JsonObject dns) {

  public record Interface(String name, String mac, Optional<Integer> mtu, String sandbox) {}

  /** @param interfaceIndex index into interfaces, or -1 when the result does not say */
  public record Ip(String address, String gateway, int interfaceIndex) {}

  public record Route(String dst, String gw) {}

  public CniResult {
    interfaces = List.copyOf(interfaces);
    ips = List.copyOf(ips);
    routes = List.copyOf(routes);
    dns = dns == null ? new JsonObject() : dns.copy();
  }

  /**
   * Reads a result of any supported version (the fields we write are a superset across them).
   * A result of the wrong shape throws ClassCastException or IllegalArgumentException.
   */
  public static CniResult fromJson(JsonObject json) {
    List<Interface> interfaces = new ArrayList<>();
    for (Object o : json.getJsonArray("interfaces", new JsonArray())) {
      JsonObject i = (JsonObject) o;
      interfaces.add(new Interface(i.getString("name", ""), i.getString("mac", ""),
          Optional.ofNullable(i.getInteger("mtu")), i.getString("sandbox", "")));
    }
    List<Ip> ips = new ArrayList<>();
    for (Object o : json.getJsonArray("ips", new JsonArray())) {
      JsonObject ip = (JsonObject) o;
      if (ip.getString("address") == null) {
        throw new IllegalArgumentException("ips entry " + ip.encode() + " has no address");
      }
      ips.add(new Ip(ip.getString("address"), ip.getString("gateway", ""), ip.getInteger("interface", -1)));
    }
    List<Route> routes = new ArrayList<>();
    for (Object o : json.getJsonArray("routes", new JsonArray())) {
      JsonObject r = (JsonObject) o;
      if (r.getString("dst") == null) {
        throw new IllegalArgumentException("routes entry " + r.encode() + " has no dst");
      }
      routes.add(new Route(r.getString("dst"), r.getString("gw", "")));
    }
    return new CniResult(interfaces, ips, routes, json.getJsonObject("dns"));
  }

  /** The same result with the pod-side interface (the one with a sandbox) given an MTU. */
  public CniResult withSandboxMtu(int mtu) {
    List<Interface> updated = interfaces.stream()
        .map(i -> i.sandbox().isEmpty() ? i : new Interface(i.name(), i.mac(), Optional.of(mtu), i.sandbox()))
        .toList();
    return new CniResult(updated, ips, routes, dns);
  }

  /** This result after a previous plugin's (chained ADD): theirs first, interface indices shifted. */
  public CniResult appendedTo(CniResult previous) {
    int shift = previous.interfaces().size();
    List<Interface> allInterfaces = new ArrayList<>(previous.interfaces());
    allInterfaces.addAll(interfaces);
    List<Ip> allIps = new ArrayList<>(previous.ips());
    ips.forEach(ip -> allIps.add(new Ip(ip.address(), ip.gateway(),
        ip.interfaceIndex() < 0 ? -1 : ip.interfaceIndex() + shift)));
    List<Route> allRoutes = new ArrayList<>(previous.routes());
    allRoutes.addAll(routes);
    return new CniResult(allInterfaces, allIps, allRoutes, previous.dns().isEmpty() ? dns : previous.dns());
  }

  public JsonObject toJson(String cniVersion) {
    boolean legacy = CniVersions.before(cniVersion, "1.0.0");
    boolean hasMtu = !CniVersions.before(cniVersion, "1.1.0");
    JsonArray ifs = new JsonArray();
    for (Interface i : interfaces) {
      JsonObject o = new JsonObject().put("name", i.name());
      if (!i.mac().isEmpty()) {
        o.put("mac", i.mac());
      }
      if (hasMtu) {
        i.mtu().ifPresent(m -> o.put("mtu", m));
      }
      if (!i.sandbox().isEmpty()) {
        o.put("sandbox", i.sandbox());
      }
      ifs.add(o);
    }
    JsonArray ipList = new JsonArray();
    for (Ip ip : ips) {
      JsonObject o = new JsonObject();
      if (legacy) {
        o.put("version", ip.address().contains(":") ? "6" : "4");
      }
      if (ip.interfaceIndex() >= 0) {
        o.put("interface", ip.interfaceIndex());
      }
      o.put("address", ip.address());
      if (!ip.gateway().isEmpty()) {
        o.put("gateway", ip.gateway());
      }
      ipList.add(o);
    }
    JsonArray routeList = new JsonArray();
    for (Route r : routes) {
      JsonObject o = new JsonObject().put("dst", r.dst());
      if (!r.gw().isEmpty()) {
        o.put("gw", r.gw());
      }
      routeList.add(o);
    }
    return new JsonObject().put("cniVersion", cniVersion).put("interfaces", ifs).put("ips", ipList)
        .put("routes", routeList).put("dns", dns.copy());
  }

  /** The first address of the pod, e.g. 10.128.1.2/24, or "" for a result without one. */
  public String firstAddress() {
    return ips.isEmpty() ? "" : ips.get(0).address();
  }
}

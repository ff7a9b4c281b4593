package dev.ipseccni.tunnel;

/**
 * The MTU of the pods' interfaces (and of the node bridge): the largest inner packet that still
 * fits the underlay link once ESP has wrapped it, or the operator's explicit value. Computed once
 * at the agent's start; the derivation says how, for the log and the state page.
 *
 * @param value the MTU
 * @param derivation how it was found ("network.mtu", or the link, its MTU and the proposal)
 */
public record PodMtu(int value, String derivation) {
  /** kernel-libipsec's TUN device (ipsec0) has this MTU whatever the link's. */
  public static final int LIBIPSEC_TUN_MTU = 1400;

  public static PodMtu explicit(int mtu) {
    return new PodMtu(mtu, "network.mtu");
  }

  /**
   * From the link that holds the underlay address: raw ESP with the kernel datapath, ESP in UDP
   * with libipsec (which also caps it at its TUN's MTU). A kernel datapath behind NAT
   * encapsulates in UDP too and loses 8 bytes more: the kernel then answers DF packets that no
   * longer fit with "fragmentation needed" to the pod, as for any path MTU below the pods'.
   */
  public static PodMtu fromUnderlay(String link, int linkMtu, Proposals proposals, Datapath datapath) {
    boolean udp = datapath == Datapath.LIBIPSEC;
    EspOverhead esp = EspOverhead.worstOf(proposals.esp(), udp);
    int inner = esp.largestInner(linkMtu);
    String why = link + " MTU " + linkMtu + " less ESP tunnel mode " + esp.around(inner) + " bytes ("
        + esp.proposal() + (udp ? ", in UDP" : ", raw ESP") + ")";
    if (udp && inner > LIBIPSEC_TUN_MTU) {
      return new PodMtu(LIBIPSEC_TUN_MTU, why + " = " + inner + ", capped at libipsec's TUN MTU " + LIBIPSEC_TUN_MTU);
    }
    if (inner < 576) {
      throw new IllegalArgumentException("the pod MTU from " + why + " would be " + inner
          + ", below IPv4's minimum of 576: set network.mtu or use a link with a larger MTU");
    }
    return new PodMtu(inner, why);
  }
}

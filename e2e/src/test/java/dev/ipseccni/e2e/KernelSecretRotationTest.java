package dev.ipseccni.e2e;

import dev.ipseccni.e2e.TunnelLab.IkeSa;
import java.time.Duration;

/**
 * {@link SecretRotationLabTest} on the production datapath: two User-Mode Linux nodes with
 * kernel XFRM/ESP ({@code lab up 2 --psk --kernel}). The cluster secret file is replaced under
 * the running agents; the tunnel is re-authenticated make-before-break, the old key leaves
 * charon, and the pod ping across the kernel SAs loses no more echoes than in the netns lab.
 */
class KernelSecretRotationTest extends SecretRotationLabTest {
  @Override
  protected String[] upArguments() {
    return new String[] {"up", "2", "--psk", "--kernel"};
  }

  @Override
  protected void awaitFullMesh() {
    KernelLab.awaitFullMesh(lab, 2);
  }

  @Override
  protected IkeSa tunnelToNode2() {
    return KernelLab.ikeSas(lab, 1).get("peer-node2");
  }

  /** Every command into a guest and every reconcile of an agent in UML is slower. */
  @Override
  protected Duration rotated() {
    return Duration.ofSeconds(240);
  }

  @Override
  protected String benchSuffix() {
    return "-kernel";
  }
}

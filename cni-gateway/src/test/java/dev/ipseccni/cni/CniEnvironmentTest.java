package dev.ipseccni.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What each command requires of the environment, and CNI_ARGS with and without IgnoreUnknown. */
class CniEnvironmentTest {
  static Map<String, String> add() {
    Map<String, String> env = new HashMap<>(Map.of("CNI_COMMAND", "ADD", "CNI_CONTAINERID", "abc_1.2-3",
        "CNI_NETNS", "/run/netns/p", "CNI_IFNAME", "eth0", "CNI_PATH", "/opt/cni/bin"));
    return env;
  }

  static int code(Map<String, String> env) {
    return assertThrows(CniError.class, () -> CniEnvironment.from(env)).code();
  }

  @Test
  void delNeedsNoNetnsButAddDoes() {
    Map<String, String> env = add();
    env.remove("CNI_NETNS");
    assertEquals(CniError.INVALID_ENVIRONMENT, code(env));
    env.put("CNI_COMMAND", "DEL");
    assertEquals("", CniEnvironment.from(env).netns());
  }

  @Test
  void versionAndStatusNeedOnlyTheCommand() {
    assertEquals(CniCommand.STATUS, CniEnvironment.from(Map.of("CNI_COMMAND", "STATUS")).command());
    assertEquals(CniCommand.VERSION, CniEnvironment.from(Map.of("CNI_COMMAND", "VERSION")).command());
  }

  @Test
  void gcNeedsThePath() {
    assertEquals(CniError.INVALID_ENVIRONMENT, code(Map.of("CNI_COMMAND", "GC")));
    assertEquals(CniCommand.GC, CniEnvironment.from(Map.of("CNI_COMMAND", "GC", "CNI_PATH", "/x")).command());
  }

  @Test
  void containerIdsAndInterfaceNamesFollowTheSpec() {
    for (String bad : new String[] {"", "-a", ".a", "a b", "a/b", "a:b"}) {
      Map<String, String> env = add();
      env.put("CNI_CONTAINERID", bad);
      assertEquals(CniError.INVALID_ENVIRONMENT, code(env), "container id '" + bad + "'");
    }
    for (String bad : new String[] {"", ".", "..", "a/b", "a:b", "a b", "sixteen-chars-xx"}) {
      Map<String, String> env = add();
      env.put("CNI_IFNAME", bad);
      assertEquals(CniError.INVALID_ENVIRONMENT, code(env), "ifname '" + bad + "'");
    }
    Map<String, String> env = add();
    env.put("CNI_IFNAME", "fifteen-chars-x");
    assertEquals("fifteen-chars-x", CniEnvironment.from(env).ifName());
  }

  @Test
  void unknownArgsNeedIgnoreUnknown() {
    Map<String, String> env = add();
    env.put("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;FOO=bar");
    assertEquals(CniError.INVALID_ENVIRONMENT, code(env));
    env.put("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;FOO=bar");
    CniArgs args = CniEnvironment.from(env).args();
    assertEquals("shop", args.podNamespace());
    assertEquals("web-0", args.podName());
    env.put("CNI_ARGS", "IgnoreUnknown=1;novalue");
    assertEquals(CniError.INVALID_ENVIRONMENT, code(env));
  }
}

package dev.ipseccni.agent.cli;

import dev.ipseccni.agent.ConfigException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;

/**
 * What every operator command shares: find the agent, run, and turn "agent down" and a bad
 * option into one clear line on stderr and a distinct exit status.
 */
abstract class OperatorCommand implements Callable<Integer> {
  @Mixin
  ApiOptions options;

  @Override
  public final Integer call() {
    try {
      options.checkOutput();
      return run(options.client());
    } catch (ConfigException e) {
      e.problems().forEach(p -> System.err.println("ipsec-cni: " + p));
      return ApiOptions.EXIT_USAGE;
    } catch (AgentApiClient.AgentUnreachable e) {
      System.err.println("ipsec-cni: " + e.getMessage());
      return ApiOptions.EXIT_UNREACHABLE;
    }
  }

  abstract int run(AgentApiClient agent) throws AgentApiClient.AgentUnreachable, ConfigException;

  static String text(com.fasterxml.jackson.databind.JsonNode node, String field) {
    return node.path(field).isMissingNode() || node.path(field).isNull() ? "" : node.path(field).asText();
  }

  static String yesNo(boolean b) {
    return b ? "yes" : "no";
  }

  static String ago(long millis) {
    if (millis <= 0) {
      return "";
    }
    long s = Math.max(0, (System.currentTimeMillis() - millis) / 1000);
    return s < 120 ? s + "s" : s < 7200 ? (s / 60) + "m" : (s / 3600) + "h";
  }

  static void printJson(Object json) {
    try {
      System.out.println(dev.ipseccni.bus.JsonRecordCodec.MAPPER.writerWithDefaultPrettyPrinter()
          .writeValueAsString(json));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}

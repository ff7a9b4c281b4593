package dev.ipseccni.agent.cli;

import dev.ipseccni.agent.AgentConfig;
import dev.ipseccni.agent.ConfigException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import picocli.CommandLine.Option;

/**
 * Where the agent's API is and how to print, shared by every operator command: an explicit
 * {@code --api URL}, else the api address and port of {@code --config FILE}, else of
 * /etc/ipsec-cni/agent.json when it exists, else http://127.0.0.1:9750.
 */
public final class ApiOptions {
  static final Path DEFAULT_CONFIG = Path.of("/etc/ipsec-cni/agent.json");
  static final int EXIT_UNREACHABLE = 3;
  static final int EXIT_USAGE = 2;

  @Option(names = "--api", paramLabel = "URL", description = "the agent's API, e.g. http://192.0.2.11:9750")
  String api;

  @Option(names = "--config", paramLabel = "FILE", description = "the agent's config file (its api.address/api.port are used)")
  Path config;

  @Option(names = {"-o", "--output"}, paramLabel = "FORMAT", defaultValue = "table",
      description = "table (default) or json")
  String output;

  boolean json() {
    return output.equals("json");
  }

  void checkOutput() throws ConfigException {
    if (!output.equals("table") && !output.equals("json")) {
      throw new ConfigException(java.util.List.of("--output: '" + output + "' must be 'table' or 'json'"));
    }
  }

  /** The agent config, when one is named or found at the default place. */
  Optional<AgentConfig> agentConfig() throws ConfigException {
    if (config != null) {
      return Optional.of(AgentConfig.load(config));
    }
    if (api == null && Files.isReadable(DEFAULT_CONFIG)) {
      return Optional.of(AgentConfig.load(DEFAULT_CONFIG));
    }
    return Optional.empty();
  }

  URI baseUri() throws ConfigException {
    if (api != null) {
      try {
        URI uri = URI.create(api.contains("://") ? api : "http://" + api);
        if (uri.getHost() == null) {
          throw new IllegalArgumentException("no host");
        }
        return uri;
      } catch (IllegalArgumentException e) {
        throw new ConfigException(java.util.List.of("--api: '" + api + "' is not a URL like http://192.0.2.11:9750"));
      }
    }
    Optional<AgentConfig> c = agentConfig();
    if (c.isPresent()) {
      AgentConfig.Api a = c.get().api();
      if (!a.enabled()) {
        throw new ConfigException(java.util.List.of("api.port is 0 in the agent's config: its HTTP API is off"));
      }
      String host = a.address().contains(":") ? "[" + a.address() + "]" : a.address();
      return URI.create("http://" + host + ":" + a.port());
    }
    return URI.create("http://127.0.0.1:9750");
  }

  AgentApiClient client() throws ConfigException {
    return new AgentApiClient(baseUri());
  }
}

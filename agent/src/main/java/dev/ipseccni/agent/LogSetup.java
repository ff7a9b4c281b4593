package dev.ipseccni.agent;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Instant;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * One log line per event on stderr, as text or JSON, through java.util.logging, which
 * Vert.x and Hazelcast (logging type "jdk") use too.
 */
final class LogSetup {
  private LogSetup() {}

  static void configure(String node, String format, String level) {
    Logger root = Logger.getLogger("");
    for (Handler h : root.getHandlers()) {
      root.removeHandler(h);
    }
    Handler handler = new ConsoleHandler();
    handler.setLevel(Level.ALL);
    handler.setFormatter(format.equals("json") ? new JsonLine(node) : new TextLine(node));
    root.addHandler(handler);
    root.setLevel(julLevel(level));
    // Hazelcast narrates every connection at INFO; membership changes are logged by us.
    Logger.getLogger("com.hazelcast").setLevel(level.equals("DEBUG") ? Level.INFO : Level.WARNING);
    Logger.getLogger("io.netty").setLevel(Level.WARNING);
  }

  static Level julLevel(String level) {
    return switch (level) {
      case "DEBUG" -> Level.FINE;
      case "WARN" -> Level.WARNING;
      case "ERROR" -> Level.SEVERE;
      default -> Level.INFO;
    };
  }

  static String levelName(Level level) {
    if (level.intValue() >= Level.SEVERE.intValue()) {
      return "ERROR";
    }
    if (level.intValue() >= Level.WARNING.intValue()) {
      return "WARN";
    }
    if (level.intValue() >= Level.INFO.intValue()) {
      return "INFO";
    }
    return "DEBUG";
  }

  private static String shortLogger(String name) {
    if (name == null) {
      return "-";
    }
    int dot = name.lastIndexOf('.');
    return dot < 0 ? name : name.substring(dot + 1);
  }

  private static String thrown(LogRecord record) {
    if (record.getThrown() == null) {
      return "";
    }
    StringWriter out = new StringWriter();
    record.getThrown().printStackTrace(new PrintWriter(out));
    return out.toString();
  }

  static final class TextLine extends Formatter {
    private final String node;

    TextLine(String node) {
      this.node = node;
    }

    @Override
    public String format(LogRecord record) {
      String message = formatMessage(record).replace('\n', ' ');
      String trace = thrown(record);
      return String.format("%s %-5s %s [%s] %s%n%s", Instant.ofEpochMilli(record.getMillis()),
          levelName(record.getLevel()), node, shortLogger(record.getLoggerName()), message, trace);
    }
  }

  static final class JsonLine extends Formatter {
    private final String node;

    JsonLine(String node) {
      this.node = node;
    }

    @Override
    public String format(LogRecord record) {
      StringBuilder line = new StringBuilder(160).append('{');
      field(line, "ts", Instant.ofEpochMilli(record.getMillis()).toString()).append(',');
      field(line, "level", levelName(record.getLevel())).append(',');
      field(line, "node", node).append(',');
      field(line, "logger", record.getLoggerName() == null ? "-" : record.getLoggerName()).append(',');
      field(line, "msg", formatMessage(record));
      String trace = thrown(record);
      if (!trace.isEmpty()) {
        line.append(',');
        field(line, "error", trace);
      }
      return line.append("}\n").toString();
    }

    private static StringBuilder field(StringBuilder line, String key, String value) {
      line.append('"').append(key).append("\":\"");
      for (int i = 0; i < value.length(); i++) {
        char c = value.charAt(i);
        switch (c) {
          case '"' -> line.append("\\\"");
          case '\\' -> line.append("\\\\");
          case '\n' -> line.append("\\n");
          case '\r' -> line.append("\\r");
          case '\t' -> line.append("\\t");
          default -> {
            if (c < 0x20) {
              line.append(String.format("\\u%04x", (int) c));
            } else {
              line.append(c);
            }
          }
        }
      }
      return line.append('"');
    }
  }
}

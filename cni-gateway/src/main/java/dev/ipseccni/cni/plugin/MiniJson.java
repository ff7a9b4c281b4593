package dev.ipseccni.cni.plugin;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Just enough JSON for the plugin binary, which must start without any library: parse a
 * document into maps, lists, strings, numbers (as strings of digits parsed to Double),
 * booleans and null; quote a string.
 */
final class MiniJson {
  /** Deeper documents are refused rather than recursed into: 100k nested '[' must not overflow the stack. */
  static final int MAX_DEPTH = 256;

  private final String text;
  private int pos;
  private int depth;

  private MiniJson(String text) {
    this.text = text;
  }

  /** Parses a whole document; IllegalArgumentException with the offset when it is not JSON. */
  static Object parse(String text) {
    MiniJson p = new MiniJson(text);
    p.space();
    Object value = p.value();
    p.space();
    if (p.pos != text.length()) {
      throw p.error("trailing characters");
    }
    return value;
  }

  /** The string value of a top-level key, or {@code fallback} when absent, not a string, or not JSON. */
  static String topLevelString(String json, String key, String fallback) {
    try {
      if (parse(json) instanceof Map<?, ?> map && map.get(key) instanceof String s) {
        return s;
      }
    } catch (IllegalArgumentException notJson) {
      // the gateway reports malformed configs; here a fallback is all we need
    }
    return fallback;
  }

  /**
   * The text of the value at a path of object members (e.g. "ipam", "result"), exactly as it
   * stands in the document, or empty when the document is not JSON or has no such value.
   */
  static java.util.Optional<String> memberText(String json, String... path) {
    try {
      parse(json);
      MiniJson p = new MiniJson(json);
      p.space();
      for (String key : path) {
        if (!p.seekMember(key)) {
          return java.util.Optional.empty();
        }
      }
      int start = p.pos;
      p.value();
      return java.util.Optional.of(json.substring(start, p.pos));
    } catch (IllegalArgumentException notJson) {
      return java.util.Optional.empty();
    }
  }

  /** At an object: moves to the value of its member key and returns true; false when there is none. */
  private boolean seekMember(String key) {
    if (!peek('{')) {
      return false;
    }
    pos++;
    space();
    while (peek('"')) {
      String name = string();
      space();
      expect(':');
      space();
      if (name.equals(key)) {
        return true;
      }
      value();
      space();
      if (!peek(',')) {
        return false;
      }
      pos++;
      space();
    }
    return false;
  }

  static void quote(String s, StringBuilder out) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }

  private Object value() {
    if (pos >= text.length()) {
      throw error("unexpected end");
    }
    char c = text.charAt(pos);
    if ((c == '{' || c == '[') && depth >= MAX_DEPTH) {
      throw error("nested deeper than " + MAX_DEPTH + " levels");
    }
    return switch (c) {
      case '{' -> object();
      case '[' -> array();
      case '"' -> string();
      case 't' -> literal("true", Boolean.TRUE);
      case 'f' -> literal("false", Boolean.FALSE);
      case 'n' -> literal("null", null);
      default -> number();
    };
  }

  private Map<String, Object> object() {
    Map<String, Object> map = new LinkedHashMap<>();
    depth++;
    pos++;
    space();
    if (peek('}')) {
      pos++;
      depth--;
      return map;
    }
    while (true) {
      space();
      if (!peek('"')) {
        throw error("expected a key");
      }
      String key = string();
      space();
      expect(':');
      space();
      map.put(key, value());
      space();
      if (peek(',')) {
        pos++;
      } else {
        expect('}');
        depth--;
        return map;
      }
    }
  }

  private List<Object> array() {
    List<Object> list = new ArrayList<>();
    depth++;
    pos++;
    space();
    if (peek(']')) {
      pos++;
      depth--;
      return list;
    }
    while (true) {
      space();
      list.add(value());
      space();
      if (peek(',')) {
        pos++;
      } else {
        expect(']');
        depth--;
        return list;
      }
    }
  }

  private String string() {
    pos++;
    StringBuilder s = new StringBuilder();
    while (pos < text.length()) {
      char c = text.charAt(pos++);
      if (c == '"') {
        return s.toString();
      }
      if (c != '\\') {
        s.append(c);
        continue;
      }
      if (pos >= text.length()) {
        break;
      }
      char e = text.charAt(pos++);
      switch (e) {
        case 'n' -> s.append('\n');
        case 't' -> s.append('\t');
        case 'r' -> s.append('\r');
        case 'b' -> s.append('\b');
        case 'f' -> s.append('\f');
        case 'u' -> {
          if (pos + 4 > text.length()) {
            throw error("short \\u escape");
          }
          s.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
          pos += 4;
        }
        default -> s.append(e);
      }
    }
    throw error("unterminated string");
  }

  private Object number() {
    int start = pos;
    while (pos < text.length() && "+-0123456789.eE".indexOf(text.charAt(pos)) >= 0) {
      pos++;
    }
    if (start == pos) {
      throw error("unexpected character '" + text.charAt(pos) + "'");
    }
    try {
      return Double.valueOf(text.substring(start, pos));
    } catch (NumberFormatException e) {
      throw error("bad number");
    }
  }

  private Object literal(String word, Object value) {
    if (!text.startsWith(word, pos)) {
      throw error("unexpected literal");
    }
    pos += word.length();
    return value;
  }

  private boolean peek(char c) {
    return pos < text.length() && text.charAt(pos) == c;
  }

  private void expect(char c) {
    if (!peek(c)) {
      throw error("expected '" + c + "'");
    }
    pos++;
  }

  private void space() {
    while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
      pos++;
    }
  }

  private IllegalArgumentException error(String what) {
    return new IllegalArgumentException("invalid JSON at offset " + pos + ": " + what);
  }
}

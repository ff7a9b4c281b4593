/*
 * ipsec-cni: the CNI plugin binary. A thin client: it forwards the runtime's CNI_*
 * environment and stdin to the node agent over a Unix socket (HTTP/1.1, see protocol.h)
 * and prints the agent's answer with the agent's exit code. All logic lives in the agent.
 *
 * Answered here, without the agent: VERSION, and every call in which this binary is the
 * IPAM plugin of the agent's own bridge delegate (answer_as_ipam). When the agent cannot be reached: ADD fails
 * with 11 (try again later), DEL is recorded in the pending-DEL directory beside the
 * socket and succeeds (the agent replays it), every other command fails with 50.
 *
 * One fact is gathered here for ADD, because the client is already running on the host
 * while the agent would have to exec a helper for it: whether the pod's namespace already
 * has the interface (PROTO_INTERFACE_PRESENT_KEY). The agent then refuses the ADD without
 * touching the existing interface; without the fact it looks itself.
 *
 * Static, libc only: it runs on any host the agent's DaemonSet copies it to.
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

struct buf {
  char *data;
  size_t len;
  size_t cap;
};

static void die_oom(void) {
  fputs("ipsec-cni: out of memory\n", stderr);
  exit(PROTO_CODE_IO_FAILURE);
}

static void buf_add(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) die_oom();
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_fmt(struct buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Appends s as a JSON string literal. */
static void buf_quote(struct buf *b, const char *s, size_t n) {
  buf_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"': buf_add(b, "\\\"", 2); break;
      case '\\': buf_add(b, "\\\\", 2); break;
      case '\n': buf_add(b, "\\n", 2); break;
      case '\r': buf_add(b, "\\r", 2); break;
      case '\t': buf_add(b, "\\t", 2); break;
      default:
        if (c < 0x20) buf_fmt(b, "\\u%04x", c);
        else buf_add(b, (const char *)&s[i], 1);
    }
  }
  buf_add(b, "\"", 1);
}

static void read_all(int fd, struct buf *b) {
  char chunk[16384];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf_add(b, chunk, (size_t)n);
  }
  if (!b->data) buf_add(b, "", 0);
}

/* ---- just enough JSON to read a few members of the network config ---- */

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* p at the opening quote; returns the char after the closing quote, or NULL. Decodes into out if given. */
static const char *scan_string(const char *p, const char *end, struct buf *out) {
  p++;
  while (p < end) {
    char c = *p++;
    if (c == '"') return p;
    if (c == '\\') {
      if (p >= end) return NULL;
      char e = *p++;
      char d = e;
      if (e == 'n') d = '\n';
      else if (e == 't') d = '\t';
      else if (e == 'r') d = '\r';
      else if (e == 'u') {
        /* non-ASCII escapes do not occur in socket paths or versions: keep them verbatim */
        if (out) buf_add(out, p - 2, 2);
        continue;
      }
      if (out) buf_add(out, &d, 1);
    } else if (out) {
      buf_add(out, &c, 1);
    }
  }
  return NULL;
}

/* Skips any JSON value; returns the char after it, or NULL. */
static const char *skip_value(const char *p, const char *end) {
  p = skip_ws(p, end);
  if (p >= end) return NULL;
  if (*p == '"') return scan_string(p, end, NULL);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < end) {
      if (*p == '"') {
        p = scan_string(p, end, NULL);
        if (!p) return NULL;
        continue;
      }
      if (*p == '{' || *p == '[') depth++;
      if (*p == '}' || *p == ']') {
        depth--;
        if (depth == 0) return p + 1;
      }
      p++;
    }
    return NULL;
  }
  while (p < end && *p != ',' && *p != '}' && *p != ']') p++;
  return p;
}

/*
 * The value of member key of the JSON object at [p, end): its first character, with *value_end
 * set past it; NULL when p is not an object or has no such member.
 */
static const char *member(const char *p, const char *end, const char *key, const char **value_end) {
  p = skip_ws(p, end);
  if (p >= end || *p != '{') return NULL;
  p++;
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return NULL;
    struct buf name = {0};
    p = scan_string(p, end, &name);
    if (!p) { free(name.data); return NULL; }
    p = skip_ws(p, end);
    if (p >= end || *p != ':') { free(name.data); return NULL; }
    p = skip_ws(p + 1, end);
    int match = name.data && strcmp(name.data, key) == 0;
    free(name.data);
    const char *after = skip_value(p, end);
    if (!after) return NULL;
    if (match) {
      *value_end = after;
      return p;
    }
    p = skip_ws(after, end);
    if (p < end && *p == ',') { p++; continue; }
    return NULL;
  }
}

/* The decoded value of string member key of the object at [p, end), or NULL. */
static char *string_member(const char *p, const char *end, const char *key) {
  const char *value_end;
  const char *value = member(p, end, key, &value_end);
  if (!value || *value != '"') return NULL;
  struct buf decoded = {0};
  if (!scan_string(value, value_end, &decoded) || !decoded.data) {
    free(decoded.data);
    return NULL;
  }
  return decoded.data;
}

/* The value of a top-level string member of a JSON object, or fallback. */
static char *top_level_string(const struct buf *json, const char *key, const char *fallback) {
  char *value = string_member(json->data, json->data + json->len, key);
  return value ? value : strdup(fallback);
}

/* ---- answers ---- */

static int print_error(const char *version, int code, const char *msg, const char *details) {
  struct buf out = {0};
  buf_str(&out, "{\"cniVersion\":");
  buf_quote(&out, version, strlen(version));
  buf_fmt(&out, ",\"code\":%d,\"msg\":", code);
  buf_quote(&out, msg, strlen(msg));
  if (details && *details) {
    buf_str(&out, ",\"details\":");
    buf_quote(&out, details, strlen(details));
  }
  buf_str(&out, "}\n");
  fwrite(out.data, 1, out.len, stdout);
  fflush(stdout);
  return code > 0 && code < 256 ? code : 1;
}

static const char *env_or_empty(const char *name) {
  const char *v = getenv(name);
  return v ? v : "";
}

/*
 * The agent's datapath runs the reference bridge plugin with this binary as its IPAM plugin
 * (ipam.type PROTO_IPAM_TYPE, see PluginProtocol.IPAM_TYPE): the address is already the
 * agent's decision and rides in the config, so it is answered here, from stdin alone.
 * Returns the exit code, or -1 when this call is not one.
 */
static int answer_as_ipam(const struct buf *in, const char *command, const char *version) {
  const char *end = in->data + in->len, *ipam_end;
  const char *ipam = member(in->data, end, "ipam", &ipam_end);
  char *type = ipam ? string_member(ipam, ipam_end, "type") : NULL;
  int ours = type && strcmp(type, PROTO_IPAM_TYPE) == 0;
  free(type);
  if (!ours) return -1;
  if (strcmp(command, "ADD") == 0) {
    const char *result_end;
    const char *result = member(ipam, ipam_end, PROTO_IPAM_RESULT_KEY, &result_end);
    if (!result || *result != '{') {
      return print_error(version, PROTO_CODE_INVALID_NETWORK_CONFIG,
                         "ipsec-cni as IPAM plugin: the config's ipam has no " PROTO_IPAM_RESULT_KEY " object",
                         "the ipsec-cni agent writes it when it runs the bridge plugin");
    }
    fwrite(result, 1, (size_t)(result_end - result), stdout);
    fputc('\n', stdout);
    fflush(stdout);
    return 0;
  }
  if (strcmp(command, "DEL") == 0 || strcmp(command, "CHECK") == 0 || strcmp(command, "GC") == 0
      || strcmp(command, "STATUS") == 0) {
    return 0;
  }
  char msg[256];
  snprintf(msg, sizeof msg, "ipsec-cni as IPAM plugin: unknown CNI_COMMAND '%.64s'", command);
  return print_error(version, PROTO_CODE_INVALID_ENVIRONMENT, msg, NULL);
}

/*
 * Whether the network namespace at netns has an interface named ifname: 1 yes, 0 no, -1
 * unknown (no such namespace, no permission, a name too long...: the agent finds out and
 * says why). Enters the namespace and comes back; the agent's socket is a path, reachable
 * from either.
 */
static int probe_interface(const char *netns, const char *ifname) {
  if (!*netns || !*ifname || strlen(ifname) >= IF_NAMESIZE) return -1;
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -1;
  int target = open(netns, O_RDONLY | O_CLOEXEC);
  int result = -1;
  if (target >= 0 && setns(target, CLONE_NEWNET) == 0) {
    errno = 0;
    if (if_nametoindex(ifname) != 0) result = 1;
    else if (errno == ENODEV) result = 0;
    if (setns(self, CLONE_NEWNET) != 0) result = -1;
  }
  if (target >= 0) close(target);
  close(self);
  return result;
}

/* present: the probe's answer (-1: not probed, the key is left out). */
static void request_body(struct buf *body, const struct buf *stdin_data, int present) {
  buf_str(body, "{\"env\":{");
  int first = 1;
  size_t prefix = strlen(PROTO_ENV_PREFIX);
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, PROTO_ENV_PREFIX, prefix) != 0) continue;
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    if (!first) buf_add(body, ",", 1);
    first = 0;
    buf_quote(body, *e, (size_t)(eq - *e));
    buf_add(body, ":", 1);
    buf_quote(body, eq + 1, strlen(eq + 1));
  }
  buf_str(body, "},\"stdin\":");
  buf_quote(body, stdin_data->data, stdin_data->len);
  if (present >= 0) {
    buf_str(body, ",\"" PROTO_INTERFACE_PRESENT_KEY "\":");
    buf_str(body, present ? "true" : "false");
  }
  buf_str(body, "}");
}

/*
 * Reads the HTTP reply until its Content-Length is complete (or the agent closes): a reply
 * that has arrived is never held up by a connection left open.
 */
static void read_reply(int fd, struct buf *b) {
  char chunk[16384];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf_add(b, chunk, (size_t)n);
    char *head_end = strstr(b->data, "\r\n\r\n");
    if (!head_end) continue;
    for (char *line = b->data; line && line < head_end; line = strstr(line, "\r\n")) {
      line += (line == b->data) ? 0 : 2;
      if (strncasecmp(line, "Content-Length:", 15) == 0) {
        size_t want = (size_t)(head_end + 4 - b->data) + (size_t)atol(line + 15);
        if (b->len >= want) return;
        break;
      }
    }
  }
  if (!b->data) buf_add(b, "", 0);
}

/* Returns 0 and fills reply on an exchange; -1 with errno when the agent cannot be reached. */
static int exchange(const char *socket_path, const struct buf *body, struct buf *reply) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, socket_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  struct buf req = {0};
  buf_fmt(&req,
          PROTO_METHOD " " PROTO_PATH " HTTP/1.1\r\nHost: ipsec-cni\r\nContent-Type: " PROTO_CONTENT_TYPE
          "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
          body->len);
  buf_add(&req, body->data, body->len);
  size_t sent = 0;
  while (sent < req.len) {
    ssize_t n = write(fd, req.data + sent, req.len - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int saved = errno;
      close(fd);
      free(req.data);
      errno = saved;
      return -1;
    }
    sent += (size_t)n;
  }
  free(req.data);
  read_reply(fd, reply);
  close(fd);
  if (reply->len == 0) {
    errno = ECONNRESET;
    return -1;
  }
  return 0;
}

/* Prints the body of the agent's reply and returns its exit code, or reports a bad reply. */
static int relay_reply(const struct buf *reply, const char *version, const char *socket_path) {
  char *head_end = strstr(reply->data, "\r\n\r\n");
  if (!head_end || strncmp(reply->data, "HTTP/1.1 200", 12) != 0) {
    char first[128] = "";
    sscanf(reply->data, "%127[^\r\n]", first);
    char msg[512];
    snprintf(msg, sizeof msg, "ipsec-cni agent at %s gave an invalid answer", socket_path);
    return print_error(version, PROTO_CODE_BAD_AGENT_REPLY, msg, first);
  }
  *head_end = '\0';
  int exit_code = -1;
  long content_length = -1;
  for (char *line = strstr(reply->data, "\r\n"); line; line = strstr(line, "\r\n")) {
    line += 2;
    if (strncasecmp(line, PROTO_EXIT_CODE_HEADER ":", strlen(PROTO_EXIT_CODE_HEADER) + 1) == 0) {
      exit_code = atoi(line + strlen(PROTO_EXIT_CODE_HEADER) + 1);
    } else if (strncasecmp(line, "Content-Length:", 15) == 0) {
      content_length = atol(line + 15);
    }
  }
  const char *body = head_end + 4;
  size_t available = reply->len - (size_t)(body - reply->data);
  if (exit_code < 0 || (content_length >= 0 && (size_t)content_length > available)) {
    char msg[512];
    snprintf(msg, sizeof msg, "ipsec-cni agent at %s gave an invalid answer", socket_path);
    return print_error(version, PROTO_CODE_BAD_AGENT_REPLY, msg, "no exit code or body cut short");
  }
  size_t n = content_length >= 0 ? (size_t)content_length : available;
  fwrite(body, 1, n, stdout);
  fflush(stdout);
  return exit_code;
}

static int fsync_path(const char *path, int flags) {
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* Writes the DEL durably to dir/<del-hex(containerId\nifName)>.json. */
static int record_pending_del(const char *socket_path, const struct buf *body) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", socket_path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  else snprintf(dir, sizeof dir, ".");
  mkdir(dir, 0700);
  size_t used = strlen(dir);
  snprintf(dir + used, sizeof dir - used, "/" PROTO_PENDING_DEL_DIR_NAME);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) return -1;

  struct buf name = {0};
  buf_str(&name, "del-");
  const char *parts[] = {env_or_empty("CNI_CONTAINERID"), "\n", env_or_empty("CNI_IFNAME")};
  for (int i = 0; i < 3; i++)
    for (const unsigned char *c = (const unsigned char *)parts[i]; *c; c++) buf_fmt(&name, "%02x", *c);
  buf_str(&name, PROTO_PENDING_DEL_SUFFIX);

  char target[8192], temp[8192];
  snprintf(target, sizeof target, "%s/%s", dir, name.data);
  snprintf(temp, sizeof temp, "%s/.tmp-%ld-%s", dir, (long)getpid(), name.data);
  free(name.data);
  int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < body->len) {
    ssize_t n = write(fd, body->data + done, body->len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { close(fd); unlink(temp); return -1; }
    done += (size_t)n;
  }
  if (fsync(fd) < 0) { close(fd); unlink(temp); return -1; }
  close(fd);
  if (rename(temp, target) < 0) { unlink(temp); return -1; }
  return fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

int main(void) {
  struct buf in = {0};
  read_all(STDIN_FILENO, &in);
  const char *command = env_or_empty("CNI_COMMAND");
  char *version = top_level_string(&in, "cniVersion", PROTO_LATEST_VERSION);

  if (strcmp(command, "VERSION") == 0) {
    struct buf out = {0};
    buf_str(&out, "{\"cniVersion\":");
    buf_quote(&out, version, strlen(version));
    buf_str(&out, ",\"supportedVersions\":[" PROTO_SUPPORTED_VERSIONS "]}\n");
    fwrite(out.data, 1, out.len, stdout);
    return 0;
  }
  int as_ipam = answer_as_ipam(&in, command, version);
  if (as_ipam >= 0) return as_ipam;

  const char *socket_env = getenv(PROTO_SOCKET_ENV);
  char *socket_path = top_level_string(&in, PROTO_SOCKET_KEY,
                                       socket_env && *socket_env ? socket_env : PROTO_DEFAULT_SOCKET);
  struct buf body = {0}, reply = {0};
  int present = strcmp(command, "ADD") == 0
      ? probe_interface(env_or_empty("CNI_NETNS"), env_or_empty("CNI_IFNAME")) : -1;
  request_body(&body, &in, present);
  if (exchange(socket_path, &body, &reply) == 0) {
    return relay_reply(&reply, version, socket_path);
  }

  char why[4352];
  snprintf(why, sizeof why, "ipsec-cni agent not reachable at %s", socket_path);
  const char *cause = strerror(errno);
  if (strcmp(command, "DEL") == 0) {
    if (record_pending_del(socket_path, &body) == 0) return 0;
    strncat(why, " and the DEL could not be recorded for later", sizeof why - strlen(why) - 1);
    return print_error(version, PROTO_CODE_IO_FAILURE, why, strerror(errno));
  }
  if (strcmp(command, "ADD") == 0) return print_error(version, PROTO_CODE_TRY_AGAIN_LATER, why, cause);
  return print_error(version, PROTO_CODE_NOT_AVAILABLE, why, cause);
}

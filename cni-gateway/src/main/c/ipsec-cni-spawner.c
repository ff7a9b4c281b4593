/*
 * ipsec-cni-spawner: runs commands for the node agent, so that the agent's JVM does not
 * fork once per pod. The agent starts it once (dev.ipseccni.cni.ProcessSpawner) and
 * sends it requests on its stdin; it posix_spawn()s each command into a process group of
 * its own and answers on its stdout with how the command ended and what it printed.
 *
 * Framing (spawner.h mirrors the constants of dev.ipseccni.cni.SpawnerProtocol, the
 * definition). Integers are big-endian; "bytes" is a u32 length and that many bytes.
 *
 *   every frame   u32 length of the rest, u8 type, u64 id, then the type's body
 *   agent -> spawner
 *     RUN         u32 argc, argc x bytes; u32 envc, envc x bytes ("NAME=value");
 *                 bytes stdin. The child gets exactly this environment.
 *     KILL        (empty) SIGKILL to the process group of the running request id;
 *                 its answer is the RUN's, when it has died.
 *   spawner -> agent
 *     READY       i32 SPAWN_VERSION, once at start, id 0
 *     EXITED      i32 exit code, bytes stdout, bytes stderr
 *     SIGNALED    i32 signal number, bytes stdout, bytes stderr
 *     FAILED      i32 errno, bytes what failed ("posix_spawnp: No such file or directory")
 *
 * One thread, one poll() loop over the request pipe, a signalfd, and every child's
 * stdin, stdout and stderr. A child is answered once it has exited and its stdout and
 * stderr reached EOF; a grandchild that keeps them open delays the answer by DRAIN_MS at
 * most. Output beyond SPAWN_MAX_OUTPUT_BYTES is read and dropped, so a chatty child is
 * never blocked on a full pipe.
 *
 * When the agent goes (EOF on stdin, EPIPE on stdout, or the parent-death signal), the
 * process group of every running child is killed and the spawner exits. The parent-death
 * signal is SIGTERM, not SIGKILL, so that this clean-up runs for it too. Nothing but
 * frames goes to stdout; diagnostics go to stderr.
 *
 * Usage: ipsec-cni-spawner [agent-pid]   (with the pid, exits at once if it is not the parent)
 * Static, libc only.
 */
#define _GNU_SOURCE
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a child's pipes may stay open after it exited before it is answered anyway. */
#define DRAIN_MS 250
#define CHUNK 65536

struct buf {
  unsigned char *data;
  size_t len;
  size_t cap;
};

struct child {
  uint64_t id;
  pid_t pid;             /* also its process group; 0 once reaped */
  int status;            /* from waitpid, once reaped */
  int64_t drain_until;   /* CLOCK_MONOTONIC ms, once reaped */
  int in, out, err;      /* our ends of its pipes, -1 once closed */
  unsigned char *input;  /* what is still to be written to its stdin */
  size_t input_len;
  size_t input_off;
  struct buf out_buf;
  struct buf err_buf;
  struct child *next;
};

static struct child *children;
static struct buf requests; /* read from stdin, not yet a whole frame */
static int request_eof;

static void shut_down(int code, const char *why) {
  for (struct child *c = children; c; c = c->next) {
    /* only unreaped children: a reaped one's pid, and so its group id, may be reused */
    if (c->pid > 0) kill(-c->pid, SIGKILL);
  }
  if (why) fprintf(stderr, "ipsec-cni-spawner: %s\n", why);
  exit(code);
}

static void die_errno(const char *what) {
  char why[256];
  snprintf(why, sizeof why, "%s: %s", what, strerror(errno));
  shut_down(1, why);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void buf_add(struct buf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) shut_down(1, "out of memory");
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
}

static void buf_u8(struct buf *b, uint8_t v) { buf_add(b, &v, 1); }

static void buf_u32(struct buf *b, uint32_t v) {
  unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  buf_add(b, p, 4);
}

static void buf_u64(struct buf *b, uint64_t v) {
  buf_u32(b, (uint32_t)(v >> 32));
  buf_u32(b, (uint32_t)v);
}

static void buf_bytes(struct buf *b, const void *data, size_t n) {
  buf_u32(b, (uint32_t)n);
  buf_add(b, data, n);
}

static void buf_free(struct buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- answers ---- */

static void send_frame(uint8_t type, uint64_t id, int32_t value, const struct buf *first, const struct buf *second) {
  struct buf f = {0};
  uint32_t len = 1 + 8 + 4 + (first ? 4 + first->len : 0) + (second ? 4 + second->len : 0);
  buf_u32(&f, len);
  buf_u8(&f, type);
  buf_u64(&f, id);
  buf_u32(&f, (uint32_t)value);
  if (first) buf_bytes(&f, first->data, first->len);
  if (second) buf_bytes(&f, second->data, second->len);
  size_t off = 0;
  while (off < f.len) {
    ssize_t n = write(STDOUT_FILENO, f.data + off, f.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      /* EPIPE: the agent is gone */
      buf_free(&f);
      shut_down(errno == EPIPE ? 0 : 1, errno == EPIPE ? NULL : "cannot write to the agent");
    }
    off += (size_t)n;
  }
  buf_free(&f);
}

static void send_failed(uint64_t id, int err, const char *what) {
  char text[256];
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  struct buf b = {(unsigned char *)text, strlen(text), 0};
  send_frame(SPAWN_FAILED, id, err, &b, NULL);
}

/* ---- children ---- */

static void close_fd(int *fd) {
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

static void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die_errno("fcntl");
}

static void spawn_child(uint64_t id, char **argv, char **envp, const unsigned char *input, size_t input_len) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
    int e = errno;
    for (int i = 0; i < 2; i++) {
      close_fd(&in[i]);
      close_fd(&out[i]);
      close_fd(&err[i]);
    }
    send_failed(id, e, "pipe2");
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  posix_spawnattr_init(&attr);
  /* Its own group, so a kill reaches what it starts (bridge execs an IPAM plugin); no
     blocked signals and default dispositions, whatever the spawner blocks or ignores. */
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close_fd(&in[0]);
  close_fd(&out[1]);
  close_fd(&err[1]);
  if (rc != 0) {
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&err[0]);
    send_failed(id, rc, "posix_spawnp");
    return;
  }
  struct child *c = calloc(1, sizeof *c);
  if (!c) shut_down(1, "out of memory");
  c->id = id;
  c->pid = pid;
  c->in = in[1];
  c->out = out[0];
  c->err = err[0];
  set_nonblocking(c->in);
  set_nonblocking(c->out);
  set_nonblocking(c->err);
  if (input_len == 0) {
    close_fd(&c->in);
  } else {
    c->input = malloc(input_len);
    if (!c->input) shut_down(1, "out of memory");
    memcpy(c->input, input, input_len);
    c->input_len = input_len;
  }
  c->next = children;
  children = c;
}

static void write_input(struct child *c) {
  while (c->input_off < c->input_len) {
    ssize_t n = write(c->in, c->input + c->input_off, c->input_len - c->input_off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) break; /* EPIPE: it does not read its stdin, which is its business */
    c->input_off += (size_t)n;
  }
  close_fd(&c->in);
  free(c->input);
  c->input = NULL;
}

static void read_output(int *fd, struct buf *b) {
  static unsigned char chunk[CHUNK];
  ssize_t n = read(*fd, chunk, sizeof chunk);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close_fd(fd);
    return;
  }
  size_t room = SPAWN_MAX_OUTPUT_BYTES - b->len;
  buf_add(b, chunk, (size_t)n < room ? (size_t)n : room);
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (struct child *c = children; c; c = c->next) {
      if (c->pid == pid) {
        c->pid = 0;
        c->status = status;
        c->drain_until = now_ms() + DRAIN_MS;
        break;
      }
    }
  }
}

/* Answers and forgets every child that has exited and whose pipes are done (or drained long enough). */
static void answer_finished(void) {
  int64_t now = now_ms();
  struct child **link = &children;
  while (*link) {
    struct child *c = *link;
    if (c->pid != 0 || ((c->out >= 0 || c->err >= 0) && now < c->drain_until)) {
      link = &c->next;
      continue;
    }
    close_fd(&c->in);
    close_fd(&c->out);
    close_fd(&c->err);
    if (WIFSIGNALED(c->status)) {
      send_frame(SPAWN_SIGNALED, c->id, WTERMSIG(c->status), &c->out_buf, &c->err_buf);
    } else {
      send_frame(SPAWN_EXITED, c->id, WEXITSTATUS(c->status), &c->out_buf, &c->err_buf);
    }
    *link = c->next;
    free(c->input);
    buf_free(&c->out_buf);
    buf_free(&c->err_buf);
    free(c);
  }
}

/* ---- requests ---- */

struct cursor {
  const unsigned char *p;
  size_t left;
};

static void protocol_error(const char *what) {
  char why[256];
  snprintf(why, sizeof why, "bad request from the agent: %s", what);
  shut_down(2, why);
}

static uint32_t get_u32(struct cursor *c) {
  if (c->left < 4) protocol_error("truncated frame");
  uint32_t v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 | c->p[3];
  c->p += 4;
  c->left -= 4;
  return v;
}

static const unsigned char *get_bytes(struct cursor *c, size_t *len) {
  *len = get_u32(c);
  if (c->left < *len) protocol_error("truncated frame");
  const unsigned char *p = c->p;
  c->p += *len;
  c->left -= *len;
  return p;
}

/* A NULL-terminated array of the next count strings, each a NUL-terminated copy. */
static char **get_strings(struct cursor *c) {
  uint32_t count = get_u32(c);
  if (count > c->left / 4) protocol_error("string count beyond the frame");
  char **v = calloc((size_t)count + 1, sizeof *v);
  if (!v) shut_down(1, "out of memory");
  for (uint32_t i = 0; i < count; i++) {
    size_t len;
    const unsigned char *s = get_bytes(c, &len);
    if (memchr(s, '\0', len)) protocol_error("NUL inside a string");
    v[i] = malloc(len + 1);
    if (!v[i]) shut_down(1, "out of memory");
    memcpy(v[i], s, len);
    v[i][len] = '\0';
  }
  return v;
}

static void free_strings(char **v) {
  for (char **s = v; *s; s++) free(*s);
  free(v);
}

static void handle_request(const unsigned char *frame, size_t len) {
  struct cursor c = {frame, len};
  if (c.left < 9) protocol_error("frame shorter than its header");
  uint8_t type = c.p[0];
  c.p++;
  c.left--;
  uint64_t id = (uint64_t)get_u32(&c) << 32;
  id |= get_u32(&c);
  if (type == SPAWN_KILL) {
    for (struct child *ch = children; ch; ch = ch->next) {
      if (ch->id == id && ch->pid > 0) kill(-ch->pid, SIGKILL);
    }
    return;
  }
  if (type != SPAWN_RUN) protocol_error("unknown frame type");
  char **argv = get_strings(&c);
  char **envp = get_strings(&c);
  size_t input_len;
  const unsigned char *input = get_bytes(&c, &input_len);
  if (!argv[0]) protocol_error("RUN without a command");
  spawn_child(id, argv, envp, input, input_len);
  free_strings(argv);
  free_strings(envp);
}

static void read_requests(void) {
  unsigned char chunk[CHUNK];
  ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n < 0) die_errno("read from the agent");
  if (n == 0) {
    request_eof = 1;
    return;
  }
  buf_add(&requests, chunk, (size_t)n);
  size_t off = 0;
  while (requests.len - off >= 4) {
    const unsigned char *p = requests.data + off;
    uint32_t frame = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (frame > SPAWN_MAX_REQUEST_BYTES) protocol_error("frame larger than SPAWN_MAX_REQUEST_BYTES");
    if (requests.len - off - 4 < frame) break;
    handle_request(p + 4, frame);
    off += 4 + (size_t)frame;
  }
  memmove(requests.data, requests.data + off, requests.len - off);
  requests.len -= off;
}

/* ---- the loop ---- */

struct watch {
  struct child *child; /* NULL: the request pipe or the signalfd */
  int *fd;
};

int main(int argc, char **argv) {
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &handled, NULL) < 0) die_errno("sigprocmask");
  int signals = signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signals < 0) die_errno("signalfd");
  signal(SIGPIPE, SIG_IGN);
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) die_errno("prctl");
  if (argc > 1 && getppid() != (pid_t)atol(argv[1])) shut_down(0, NULL); /* the agent went before prctl */
  set_nonblocking(STDIN_FILENO);
  send_frame(SPAWN_READY, 0, SPAWN_VERSION, NULL, NULL);

  struct pollfd *fds = NULL;
  struct watch *watches = NULL;
  size_t room = 0;
  for (;;) {
    size_t count = 0, needed = 2;
    for (struct child *c = children; c; c = c->next) needed += 3;
    if (needed > room) {
      room = needed * 2;
      fds = realloc(fds, room * sizeof *fds);
      watches = realloc(watches, room * sizeof *watches);
      if (!fds || !watches) shut_down(1, "out of memory");
    }
    fds[count] = (struct pollfd){.fd = signals, .events = POLLIN};
    watches[count++] = (struct watch){NULL, NULL};
    fds[count] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
    watches[count++] = (struct watch){NULL, NULL};
    int64_t wake = -1;
    for (struct child *c = children; c; c = c->next) {
      if (c->in >= 0) {
        fds[count] = (struct pollfd){.fd = c->in, .events = POLLOUT};
        watches[count++] = (struct watch){c, &c->in};
      }
      if (c->out >= 0) {
        fds[count] = (struct pollfd){.fd = c->out, .events = POLLIN};
        watches[count++] = (struct watch){c, &c->out};
      }
      if (c->err >= 0) {
        fds[count] = (struct pollfd){.fd = c->err, .events = POLLIN};
        watches[count++] = (struct watch){c, &c->err};
      }
      if (c->pid == 0 && (wake < 0 || c->drain_until < wake)) wake = c->drain_until;
    }
    int timeout = -1;
    if (wake >= 0) {
      int64_t left = wake - now_ms();
      timeout = left < 0 ? 0 : (int)left;
    }
    if (poll(fds, count, timeout) < 0) {
      if (errno == EINTR) continue;
      die_errno("poll");
    }
    if (fds[0].revents) {
      struct signalfd_siginfo info;
      int chld = 0;
      while (read(signals, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGCHLD) {
          chld = 1;
        } else {
          shut_down(0, NULL); /* the agent is going (parent death) or we were told to stop */
        }
      }
      if (chld) reap();
    }
    if (fds[1].revents) read_requests();
    for (size_t i = 2; i < count; i++) {
      if (!fds[i].revents) continue;
      struct child *c = watches[i].child;
      if (watches[i].fd == &c->in) {
        write_input(c);
      } else {
        read_output(watches[i].fd, watches[i].fd == &c->out ? &c->out_buf : &c->err_buf);
      }
    }
    answer_finished();
    if (request_eof) shut_down(0, NULL);
  }
}

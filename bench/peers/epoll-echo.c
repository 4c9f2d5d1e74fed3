// epoll-echo: the framed C peer of the echo benchmark, the epoll server a competent C network
// engineer writes for bench/specs/echo.yaml, and the one a typed server must match. Unlike
// raw-echo.c it speaks the protocol: it parses every frame and validates it the way the
// generated server does (the length within [6, maxFrame] bytes, type id 1, the payload within
// the message's bounds, the bytes prefix within its bound and filling the payload exactly), and
// closes a connection that breaks any rule. Each valid frame is echoed back.
// It is written to be fast, not weakened: frames are parsed in place in the thread's read
// buffer, only a frame split across reads is copied (into a per-connection buffer sized to it),
// and each read ends in one writev of everything it completed.
// One thread per --threads, each with its own SO_REUSEPORT listener and its own edge-triggered
// epoll, sharing nothing (the kernel spreads the connections).
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF 65536

// The wire of bench/specs/echo.yaml (docs/spec.md): u32 LE length L (type id + payload),
// u16 LE type id, payload. The spec sets no framing.maxFrame, so it is the default 64 KiB.
#define HDR 6u
#define MAX_FRAME 65536u // whole frame, header included
// Echo (id 1) is `data: bytes<4096>`: a u16 length prefix (the bound is <= 65535), then the bytes.
#define ECHO_ID 1u
#define ECHO_MAX 4096u
#define ECHO_MIN_PAYLOAD 2u
#define ECHO_MAX_PAYLOAD (2u + ECHO_MAX)
#define KEEP_PART 256u // a split frame's buffer up to this size stays with the connection

typedef struct {
  int fd;
  uint8_t *part; // a frame split across reads, the only input ever copied; NULL or small when idle
  uint32_t have, cap;
  uint8_t *pend; // unsent bytes after a partial write; NULL when drained
  size_t plen, poff;
} conn_t;

typedef struct {
  int lfd, ep;
  pthread_t th;
} worker_t;

static int stop_fd; // eventfd: becomes readable on SIGTERM/SIGINT
static conn_t stop_tag, listen_tag;

static inline uint32_t ld32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint32_t ld16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

// Checks as much of a frame's header as has arrived (avail bytes at p), as soon as it arrives,
// so a bad length or type is refused before we buffer anything for it. 0: fine so far; -1: close.
static int check_head(const uint8_t *p, size_t avail) {
  if (avail < 4) return 0;
  uint32_t l = ld32(p);
  if (l < 2 || l > MAX_FRAME - 4) return -1; // 4 + L outside [6, MAX_FRAME], without overflow
  if (avail < HDR) return 0;
  if (ld16(p + 4) != ECHO_ID) return -1; // the only message this spec has
  uint32_t payload = l - 2;
  return payload < ECHO_MIN_PAYLOAD || payload > ECHO_MAX_PAYLOAD ? -1 : 0;
}

// Decodes a whole Echo frame: the bytes prefix must be within its bound and fill the payload.
static int check_body(const uint8_t *p) {
  uint32_t n = ld16(p + HDR);
  return n <= ECHO_MAX && n == ld32(p) - 4 ? 0 : -1;
}

static int mk_listener(int port) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, zero = 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
  if (fd < 0) { // no IPv6: plain IPv4 wildcard
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a4, sizeof a4) < 0 || listen(fd, 65535) < 0) { close(fd); return -1; }
    return fd;
  }
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); // accept IPv4 too
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 65535) < 0) { close(fd); return -1; }
  return fd;
}

static void conn_free(conn_t *c) {
  close(c->fd); // also removes it from epoll
  free(c->part);
  free(c->pend);
  free(c);
}

// Grows the split-frame buffer to n bytes (n <= the largest valid frame). 0, or -1 when out of memory.
static int reserve(conn_t *c, uint32_t n) {
  if (n <= c->cap) return 0;
  if (n < KEEP_PART) n = KEEP_PART;
  uint8_t *p = realloc(c->part, n);
  if (!p) return -1;
  c->part = p;
  c->cap = n;
  return 0;
}

// Push out pending bytes; returns 1 when fully drained, 0 on EAGAIN, -1 on error.
static int drain(conn_t *c) {
  while (c->poff < c->plen) {
    ssize_t w = write(c->fd, c->pend + c->poff, c->plen - c->poff);
    if (w > 0) { c->poff += (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -1;
  }
  free(c->pend);
  c->pend = NULL;
  c->plen = c->poff = 0;
  return 1;
}

// One writev of the replies a read completed; what the socket does not take is copied to
// c->pend (drain() retries it). 0, or -1 on error.
static int send_out(conn_t *c, struct iovec *iov, int niov) {
  size_t total = 0;
  for (int i = 0; i < niov; i++) total += iov[i].iov_len;
  ssize_t w;
  do w = writev(c->fd, iov, niov);
  while (w < 0 && errno == EINTR);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
  size_t done = w < 0 ? 0 : (size_t)w;
  if (done == total) return 0;
  c->plen = total - done;
  c->poff = 0;
  c->pend = malloc(c->plen);
  if (!c->pend) return -1;
  size_t at = 0;
  for (int i = 0; i < niov; i++) {
    size_t len = iov[i].iov_len;
    if (done >= len) { done -= len; continue; }
    memcpy(c->pend + at, (uint8_t *)iov[i].iov_base + done, len - done);
    at += len - done;
    done = 0;
  }
  return 0;
}

// Edge-triggered: keep going until the socket says EAGAIN. While output is stuck we stop
// reading (backpressure) and resume on the EPOLLOUT edge. Each read's valid frames are echoed
// in one writev: the frame that completed a split one (from c->part) and then the run of whole
// frames parsed in place in buf. A frame is echoed byte for byte, so the validated bytes are
// the reply and need no re-encoding.
static void service(conn_t *c, uint8_t *buf) {
  for (;;) {
    if (c->pend) {
      int r = drain(c);
      if (r < 0) goto fail;
      if (r == 0) return;
    }
    ssize_t n = read(c->fd, buf, RBUF);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) goto fail;
    size_t len = (size_t)n, pos = 0;
    struct iovec iov[2];
    int niov = 0;
    if (c->have) { // finish the split frame: its header first, then its body
      if (c->have < HDR) {
        size_t take = HDR - c->have < len ? HDR - c->have : len;
        memcpy(c->part + c->have, buf, take);
        c->have += (uint32_t)take;
        pos = take;
        if (check_head(c->part, c->have) < 0) goto fail;
        if (c->have < HDR) continue;
      }
      uint32_t total = ld32(c->part) + 4;
      if (reserve(c, total) < 0) goto fail;
      size_t take = total - c->have < len - pos ? total - c->have : len - pos;
      memcpy(c->part + c->have, buf + pos, take);
      c->have += (uint32_t)take;
      pos += take;
      if (c->have < total) continue;
      if (check_body(c->part) < 0) goto fail;
      iov[niov++] = (struct iovec){c->part, total};
      c->have = 0; // c->part stays in iov until send_out() returns
    }
    size_t run = pos;
    while (len - pos >= 4) {
      if (check_head(buf + pos, len - pos) < 0) goto fail;
      if (len - pos < HDR) break;
      size_t total = (size_t)ld32(buf + pos) + 4;
      if (len - pos < total) break;
      if (check_body(buf + pos) < 0) goto fail;
      pos += total;
    }
    if (pos > run) iov[niov++] = (struct iovec){buf + run, pos - run};
    if (niov && send_out(c, iov, niov) < 0) goto fail;
    if (c->cap > KEEP_PART && niov && iov[0].iov_base == c->part) { // a large frame's buffer
      free(c->part);                                                // is not kept when idle
      c->part = NULL;
      c->cap = 0;
    }
    if (pos < len) { // a frame split across reads; its header (what there is of it) is checked
      size_t rest = len - pos;
      if (reserve(c, rest >= HDR ? ld32(buf + pos) + 4 : HDR) < 0) goto fail;
      memcpy(c->part, buf + pos, rest);
      c->have = (uint32_t)rest;
    }
  }
fail:
  conn_free(c);
}

static void *worker(void *arg) {
  worker_t *W = arg;
  uint8_t *buf = malloc(RBUF); // shared scratch: idle conns cost no buffer memory
  struct epoll_event evs[512];
  for (;;) {
    int n = epoll_wait(W->ep, evs, 512, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c == &stop_tag) { free(buf); return NULL; }
      if (c == &listen_tag) {
        for (;;) {
          int fd = accept4(W->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            break; // EAGAIN, or EMFILE: retry on the next edge
          }
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn_t *nc = calloc(1, sizeof *nc);
          if (!nc) { close(fd); continue; }
          nc->fd = fd;
          struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = nc};
          if (epoll_ctl(W->ep, EPOLL_CTL_ADD, fd, &ev) < 0) { close(fd); free(nc); }
        }
        continue;
      }
      service(c, buf);
    }
  }
  free(buf);
  return NULL;
}

int main(int argc, char **argv) {
  int port = -1, threads = 2, o;
  static struct option lo[] = {{"port", 1, 0, 'p'}, {"threads", 1, 0, 't'}, {0, 0, 0, 0}};
  while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    if (o == 'p') port = atoi(optarg);
    else if (o == 't') threads = atoi(optarg);
    else { fprintf(stderr, "usage: epoll-echo --port P [--threads N]\n"); return 2; }
  }
  if (port < 0 || port > 65535 || threads < 1) {
    fprintf(stderr, "usage: epoll-echo --port P [--threads N]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl = {1048576, 1048576}; // idle runs hold very many sockets
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  // Block the stop signals in every thread; main collects them with sigwait.
  sigset_t ss;
  sigemptyset(&ss);
  sigaddset(&ss, SIGTERM);
  sigaddset(&ss, SIGINT);
  pthread_sigmask(SIG_BLOCK, &ss, NULL);
  stop_fd = eventfd(0, EFD_CLOEXEC);

  worker_t *W = calloc((size_t)threads, sizeof *W);
  for (int t = 0; t < threads; t++) {
    W[t].lfd = mk_listener(port);
    if (W[t].lfd < 0) { perror("listen"); return 1; }
    if (t == 0 && port == 0) { // ephemeral: the rest join the port the kernel picked
      struct sockaddr_in6 a;
      socklen_t al = sizeof a;
      getsockname(W[0].lfd, (struct sockaddr *)&a, &al);
      port = ntohs(a.sin6_port); // sin_port sits at the same offset for IPv4
    }
    W[t].ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &listen_tag};
    epoll_ctl(W[t].ep, EPOLL_CTL_ADD, W[t].lfd, &ev);
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &stop_tag}; // level: all threads see it
    epoll_ctl(W[t].ep, EPOLL_CTL_ADD, stop_fd, &sev);
  }
  printf("listening on port %d\n", port);
  fflush(stdout);
  for (int t = 0; t < threads; t++) pthread_create(&W[t].th, NULL, worker, &W[t]);
  int sig;
  sigwait(&ss, &sig);
  uint64_t one = 1;
  if (write(stop_fd, &one, sizeof one) < 0) return 1;
  for (int t = 0; t < threads; t++) {
    pthread_join(W[t].th, NULL);
    close(W[t].lfd);
    close(W[t].ep);
  }
  return 0;
}

// epoll-echo: hand-written C byte-echo server, the strong peer for the benchmark.
// One thread per --threads, each with its own SO_REUSEPORT listener and its own
// edge-triggered epoll (no shared state, kernel spreads connections).
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
#include <unistd.h>

#define RBUF 65536

typedef struct {
  int fd;
  uint8_t *pend; // unsent bytes after a partial write; NULL when drained
  size_t plen, poff;
} conn_t;

typedef struct {
  int lfd, ep;
  pthread_t th;
} worker_t;

static int stop_fd; // eventfd: becomes readable on SIGTERM/SIGINT
static conn_t stop_tag, listen_tag;

static int mk_listener(int port) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, zero = 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
  if (fd < 0) { // no IPv6: plain IPv4 wildcard
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a4, sizeof a4) < 0 || listen(fd, 65535) < 0) return -1;
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
  free(c->pend);
  free(c);
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

// Edge-triggered: keep going until the socket says EAGAIN. While output is
// stuck we stop reading (backpressure) and resume on the EPOLLOUT edge.
static void service(conn_t *c, uint8_t *buf) {
  for (;;) {
    if (c->pend) {
      int r = drain(c);
      if (r < 0) { conn_free(c); return; }
      if (r == 0) return;
    }
    ssize_t n = read(c->fd, buf, RBUF);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) { conn_free(c); return; }
    size_t off = 0;
    while (off < (size_t)n) {
      ssize_t w = write(c->fd, buf + off, (size_t)n - off);
      if (w > 0) { off += (size_t)w; continue; }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      conn_free(c);
      return;
    }
    if (off < (size_t)n) { // partial write: keep the rest per connection
      c->plen = (size_t)n - off;
      c->poff = 0;
      c->pend = malloc(c->plen);
      if (!c->pend) { conn_free(c); return; }
      memcpy(c->pend, buf + off, c->plen);
      return;
    }
  }
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

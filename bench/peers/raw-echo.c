// raw-echo: the floor of the echo benchmark, the most any server can do on this machine.
// It never looks at frames: whatever bytes a read returns are written straight back.
// Threads as in epoll-echo.c: one per --threads, each with its own SO_REUSEPORT listener and
// edge-triggered epoll, sharing nothing (the kernel spreads the connections).
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

#define CHUNK 65536

typedef struct {
  int fd;
  uint8_t *out; // bytes a write left behind; NULL when there are none
  size_t out_len, out_off;
} peer_t;

typedef struct {
  int lfd, ep;
  pthread_t th;
} loop_t;

static int quit_fd;               // eventfd, readable once a stop signal arrived
static peer_t quit_mark, accept_mark; // epoll tags that are not connections

static int bind_reuseport(int fam, const struct sockaddr *a, socklen_t al) {
  int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1, zero = 0;
  if (fam == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); // IPv4 too
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, a, al) < 0 || listen(fd, 65535) < 0) { close(fd); return -1; }
  return fd;
}

static int listener(int port) {
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
  int fd = bind_reuseport(AF_INET6, (struct sockaddr *)&a6, sizeof a6);
  if (fd >= 0) return fd;
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)}; // no IPv6
  return bind_reuseport(AF_INET, (struct sockaddr *)&a4, sizeof a4);
}

static void drop(peer_t *p) {
  close(p->fd); // closing also takes it out of the epoll set
  free(p->out);
  free(p);
}

// Writes buf until done or the socket is full. Returns the bytes written, or -1 on error.
static ssize_t put(int fd, const uint8_t *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, buf + off, len - off);
    if (w > 0) { off += (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return -1;
  }
  return (ssize_t)off;
}

// Edge-triggered, so loop until read says EAGAIN. Leftover output stops the reading (the
// client gets backpressure, we hold at most one chunk) until the EPOLLOUT edge drains it.
static void serve(peer_t *p, uint8_t *chunk) {
  for (;;) {
    if (p->out) {
      ssize_t w = put(p->fd, p->out + p->out_off, p->out_len - p->out_off);
      if (w < 0) { drop(p); return; }
      p->out_off += (size_t)w;
      if (p->out_off < p->out_len) return;
      free(p->out);
      p->out = NULL;
    }
    ssize_t n = read(p->fd, chunk, CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) { drop(p); return; }
    ssize_t w = put(p->fd, chunk, (size_t)n);
    if (w < 0) { drop(p); return; }
    if (w < n) {
      p->out_len = (size_t)(n - w);
      p->out_off = 0;
      p->out = malloc(p->out_len);
      if (!p->out) { drop(p); return; }
      memcpy(p->out, chunk + w, p->out_len);
      return;
    }
  }
}

static void take_connections(loop_t *L) {
  for (;;) {
    int fd = accept4(L->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; // EAGAIN, or out of descriptors: the next edge retries
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    peer_t *p = calloc(1, sizeof *p);
    if (!p) { close(fd); continue; }
    p->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = p};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0) { close(fd); free(p); }
  }
}

static void *run(void *arg) {
  loop_t *L = arg;
  uint8_t *chunk = malloc(CHUNK); // one per thread: an idle connection holds no buffer
  if (!chunk) return NULL;
  struct epoll_event evs[512];
  for (;;) {
    int n = epoll_wait(L->ep, evs, 512, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < n; i++) {
      peer_t *p = evs[i].data.ptr;
      if (p == &quit_mark) { free(chunk); return NULL; }
      if (p == &accept_mark) take_connections(L);
      else serve(p, chunk);
    }
  }
  free(chunk);
  return NULL;
}

static int usage(void) {
  fprintf(stderr, "usage: raw-echo --port P [--threads N]\n");
  return 2;
}

int main(int argc, char **argv) {
  int port = -1, threads = 2, o;
  static struct option opts[] = {{"port", 1, 0, 'p'}, {"threads", 1, 0, 't'}, {0, 0, 0, 0}};
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'p') port = atoi(optarg);
    else if (o == 't') threads = atoi(optarg);
    else return usage();
  }
  if (port < 0 || port > 65535 || threads < 1) return usage();
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl = {1048576, 1048576}; // the idle workload holds very many sockets
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  // Every thread inherits the blocked stop signals; main alone takes them, with sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  quit_fd = eventfd(0, EFD_CLOEXEC);

  loop_t *L = calloc((size_t)threads, sizeof *L);
  if (!L || quit_fd < 0) { perror("raw-echo"); return 1; }
  for (int t = 0; t < threads; t++) {
    L[t].lfd = listener(port);
    if (L[t].lfd < 0) { perror("listen"); return 1; }
    if (t == 0 && port == 0) { // the others bind the port the kernel picked for the first
      struct sockaddr_in6 a;
      socklen_t al = sizeof a;
      getsockname(L[0].lfd, (struct sockaddr *)&a, &al);
      port = ntohs(a.sin6_port); // same offset as sin_port in an IPv4 address
    }
    L[t].ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &accept_mark};
    epoll_ctl(L[t].ep, EPOLL_CTL_ADD, L[t].lfd, &ev);
    struct epoll_event qev = {.events = EPOLLIN, .data.ptr = &quit_mark}; // level: every thread wakes
    epoll_ctl(L[t].ep, EPOLL_CTL_ADD, quit_fd, &qev);
  }
  printf("listening on port %d\n", port);
  fflush(stdout);
  for (int t = 0; t < threads; t++) pthread_create(&L[t].th, NULL, run, &L[t]);
  int sig;
  sigwait(&stop, &sig);
  uint64_t one = 1;
  if (write(quit_fd, &one, sizeof one) < 0) return 1;
  for (int t = 0; t < threads; t++) {
    pthread_join(L[t].th, NULL);
    close(L[t].lfd);
    close(L[t].ep);
  }
  return 0;
}

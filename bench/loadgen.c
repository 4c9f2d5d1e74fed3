// loadgen: native epoll load generator for the iocpgen benchmark.
// Modes: closed (pipelined), open (fixed schedule, CO-corrected), churn, idle.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"

enum { M_CLOSED, M_OPEN, M_CHURN, M_IDLE };
static const char *mode_names[] = {"closed", "open", "churn", "idle"};
enum { S_DEAD, S_CONNECTING, S_UP };

static struct {
  int mode, conns, size, threads, depth, type, one_each, port;
  double duration, warmup, rate, hold, hold2;
  const char *host;
} O = {M_CLOSED, 1, 64, 1, 1, 1, 0, 0, 5, 1, 1000, 1, 1, "127.0.0.1"};

typedef struct {
  int fd, idx, state, wblocked;
  uint32_t gen;
  uint64_t sent, recvd, due, cycle_start;
  uint64_t *ts; // closed: send time ring of size depth; idle: [0]
  uint8_t *rbuf, *wbuf;
  size_t rlen, wlen, woff;
} conn_t;

typedef struct {
  int id, n, ep, go_one; // go_one: idle --one-each phase active
  conn_t *c;
  hist_t h;
  uint64_t frames, errors, cerrs, k, up;
  double ival; // open: ns between scheduled frames on this thread
  pthread_t th;
} thr_t;

static struct sockaddr_in dst;
static int is_loop;
static uint8_t *tmpl; // the frame with seq 0; others differ only in seq bytes
static size_t RCAP, WCAP;
static int seq_len; // bytes of seq stamped into the data (min(n, 8))
static pthread_barrier_t bar;
static uint64_t t_start, t_meas, t_end, t_oe0, t_oe1;
static atomic_uint src_rr;
static atomic_ulong total_up, total_cerr;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void stamp(uint8_t *p, uint64_t seq) {
  for (int i = 0; i < seq_len; i++) p[8 + i] = (uint8_t)(seq >> (8 * i));
}

static uint64_t intended(thr_t *T, conn_t *c, uint64_t seq) {
  return t_start + (uint64_t)((double)(seq * (uint64_t)T->n + (uint64_t)c->idx) * T->ival);
}

static void conn_close(conn_t *c) {
  if (c->fd >= 0) close(c->fd); // close also drops the epoll registration
  c->fd = -1;
  c->state = S_DEAD;
  c->gen++; // invalidates events already queued for the old fd
}

static void open_conn(thr_t *T, conn_t *c);

// Unexpected failure: counted; churn slots start a fresh cycle.
static void conn_broken(thr_t *T, conn_t *c, int connecting) {
  if (connecting) T->cerrs++; else T->errors++;
  conn_close(c);
  c->recvd = c->sent; // resync seq after lost frames
  if (O.mode == M_CHURN && now_ns() < t_end) open_conn(T, c);
}

static void open_conn(thr_t *T, conn_t *c) {
  c->rlen = c->wlen = c->woff = 0;
  c->wblocked = 0;
  c->cycle_start = now_ns();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { T->cerrs++; c->state = S_DEAD; return; }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (is_loop) { // spread source IPs so >64k client ports are available
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + atomic_fetch_add(&src_rr, 1) % 254);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
      close(fd); T->cerrs++; c->state = S_DEAD; return;
    }
  }
  c->fd = fd;
  c->gen++;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                           .data.u64 = ((uint64_t)c->gen << 32) | (uint32_t)c->idx};
  epoll_ctl(T->ep, EPOLL_CTL_ADD, fd, &ev);
  if (connect(fd, (struct sockaddr *)&dst, sizeof dst) == 0) c->state = S_UP;
  else if (errno == EINPROGRESS) c->state = S_CONNECTING;
  else { c->state = S_CONNECTING; conn_broken(T, c, 1); }
}

static int allowed(thr_t *T, conn_t *c, uint64_t now) {
  switch (O.mode) {
  case M_CLOSED: return c->sent - c->recvd < (uint64_t)O.depth && now < t_end;
  case M_OPEN: return c->sent < c->due;
  case M_CHURN: return c->sent == c->recvd;
  default: return T->go_one && c->sent == 0;
  }
}

static void flush(thr_t *T, conn_t *c) {
  if (c->state != S_UP || c->wblocked) return;
  uint64_t now = now_ns();
  for (;;) {
    if (c->woff == c->wlen) {
      c->woff = c->wlen = 0;
      while (c->wlen + (size_t)O.size <= WCAP && allowed(T, c, now)) {
        uint8_t *p = c->wbuf + c->wlen;
        memcpy(p, tmpl, (size_t)O.size);
        stamp(p, c->sent);
        if (O.mode == M_CLOSED) c->ts[c->sent % (uint64_t)O.depth] = now;
        else if (O.mode == M_IDLE) c->ts[0] = now;
        c->sent++;
        c->wlen += (size_t)O.size;
      }
      if (!c->wlen) return;
    }
    ssize_t w = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
    if (w > 0) { c->woff += (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { c->wblocked = 1; return; }
    conn_broken(T, c, 0);
    return;
  }
}

// Returns 0 if the connection was closed/reopened (caller must stop using it).
static int got_frame(thr_t *T, conn_t *c, const uint8_t *p, uint64_t now) {
  uint64_t seq = c->recvd++;
  uint8_t want[8];
  for (int i = 0; i < seq_len; i++) want[i] = (uint8_t)(seq >> (8 * i));
  int ok = memcmp(p, tmpl, 8) == 0 && memcmp(p + 8, want, (size_t)seq_len) == 0 &&
           memcmp(p + 8 + seq_len, tmpl + 8 + seq_len, (size_t)O.size - 8 - (size_t)seq_len) == 0;
  if (!ok) T->errors++;
  uint64_t t0;
  switch (O.mode) {
  case M_CLOSED: t0 = c->ts[seq % (uint64_t)O.depth]; break;
  case M_OPEN: t0 = intended(T, c, seq); break;
  case M_CHURN: t0 = c->cycle_start; break;
  default: t0 = c->ts[0];
  }
  if (ok && now >= t_meas && now < t_end) {
    T->frames++;
    h_rec(&T->h, now > t0 ? now - t0 : 0);
  }
  if (O.mode == M_CHURN) { // cycle done: close and start the next one
    conn_close(c);
    if (now < t_end) open_conn(T, c);
    return 0;
  }
  return 1;
}

static void on_read(thr_t *T, conn_t *c) {
  for (;;) {
    ssize_t r = read(c->fd, c->rbuf + c->rlen, RCAP - c->rlen);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r <= 0) { conn_broken(T, c, 0); return; }
    uint64_t now = now_ns();
    c->rlen += (size_t)r;
    size_t off = 0;
    while (c->rlen - off >= 4) {
      const uint8_t *p = c->rbuf + off;
      uint32_t L = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
      if (L != (uint32_t)O.size - 4) { conn_broken(T, c, 0); return; } // stream desynced
      if (c->rlen - off < (size_t)O.size) break;
      if (!got_frame(T, c, p, now)) return;
      off += (size_t)O.size;
    }
    if (off) { memmove(c->rbuf, c->rbuf + off, c->rlen - off); c->rlen -= off; }
  }
}

static void handle(thr_t *T, struct epoll_event *ev) {
  conn_t *c = &T->c[(uint32_t)ev->data.u64];
  if (c->gen != (uint32_t)(ev->data.u64 >> 32) || c->fd < 0) return; // stale
  if (c->state == S_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof err;
    if (!(ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err || (ev->events & (EPOLLERR | EPOLLHUP))) { conn_broken(T, c, 1); return; }
    c->state = S_UP;
    T->up++;
  }
  if (ev->events & EPOLLOUT) c->wblocked = 0;
  uint32_t gen = c->gen;
  if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) on_read(T, c);
  if (c->gen == gen) flush(T, c);
}

// Wait at most ns (nanosecond precision so open-mode sends stay on schedule).
static void poll_once(thr_t *T, int64_t ns) {
  struct epoll_event evs[256];
  if (ns < 0) ns = 0;
  struct timespec ts = {ns / 1000000000, ns % 1000000000};
  int n = epoll_pwait2(T->ep, evs, 256, &ts, NULL);
  if (n < 0 && errno == ENOSYS) n = epoll_wait(T->ep, evs, 256, (int)((ns + 999999) / 1000000));
  for (int i = 0; i < n; i++) handle(T, &evs[i]);
}

static void run_for(thr_t *T, uint64_t until) {
  uint64_t now;
  while ((now = now_ns()) < until) {
    int64_t wait = (int64_t)(until - now);
    if (O.mode == M_OPEN) {
      uint64_t next;
      while ((next = t_start + (uint64_t)((double)T->k * T->ival)) <= now && next < t_end) {
        conn_t *c = &T->c[T->k % (uint64_t)T->n];
        c->due++; // dead conns simply skip their slots
        flush(T, c);
        T->k++;
      }
      if (next < t_end && (int64_t)(next - now) < wait) wait = (int64_t)(next - now);
    }
    poll_once(T, wait);
  }
}

static int idle_all_echoed(thr_t *T) {
  for (int i = 0; i < T->n; i++)
    if (T->c[i].state == S_UP && T->c[i].recvd == 0) return 0;
  return 1;
}

static void *thr_main(void *arg) {
  thr_t *T = arg;
  T->ep = epoll_create1(EPOLL_CLOEXEC);
  if (O.mode == M_CHURN) {
    if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD) {
      t_start = now_ns();
      t_meas = t_start + (uint64_t)(O.warmup * 1e9);
      t_end = t_meas + (uint64_t)(O.duration * 1e9);
    }
    pthread_barrier_wait(&bar);
    for (int i = 0; i < T->n; i++) open_conn(T, &T->c[i]);
    run_for(T, t_end);
    return NULL;
  }
  // Connect phase: cap in-progress connects so the listen backlog never overflows.
  uint64_t deadline = now_ns() + 30000000000ull;
  int opened = 0;
  for (;;) {
    int inprog = 0;
    for (int i = 0; i < opened; i++) inprog += T->c[i].state == S_CONNECTING;
    while (opened < T->n && inprog < 256) {
      open_conn(T, &T->c[opened]);
      if (T->c[opened].state == S_CONNECTING) inprog++;
      else if (T->c[opened].state == S_UP) T->up++;
      opened++;
    }
    if (!inprog && opened == T->n) break;
    if (now_ns() > deadline) {
      for (int i = 0; i < T->n; i++)
        if (T->c[i].state == S_CONNECTING) conn_broken(T, &T->c[i], 1);
      break;
    }
    poll_once(T, 10000000);
  }
  atomic_fetch_add(&total_up, T->up);
  atomic_fetch_add(&total_cerr, T->cerrs);
  if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD) {
    t_start = now_ns();
    if (O.mode == M_IDLE) {
      t_meas = 0;
      t_end = UINT64_MAX;
      if (atomic_load(&total_cerr))
        fprintf(stderr, "connect-failed %lu\n", (unsigned long)atomic_load(&total_cerr));
      else
        fprintf(stderr, "ready %lu\n", (unsigned long)atomic_load(&total_up));
    } else {
      t_meas = t_start + (uint64_t)(O.warmup * 1e9);
      t_end = t_meas + (uint64_t)(O.duration * 1e9);
    }
  }
  pthread_barrier_wait(&bar);
  if (atomic_load(&total_cerr) && O.mode == M_IDLE) return NULL; // idle stops on connect failure
  if (O.mode != M_IDLE) {
    if (O.mode == M_CLOSED)
      for (int i = 0; i < T->n; i++) flush(T, &T->c[i]);
    run_for(T, t_end);
    return NULL;
  }
  run_for(T, t_start + (uint64_t)(O.hold * 1e9));
  if (O.one_each) {
    if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD) t_oe0 = now_ns();
    pthread_barrier_wait(&bar);
    T->go_one = 1;
    for (int i = 0; i < T->n; i++) flush(T, &T->c[i]);
    uint64_t lim = now_ns() + 30000000000ull;
    while (!idle_all_echoed(T) && now_ns() < lim) poll_once(T, 10000000);
    for (int i = 0; i < T->n; i++)
      if (T->c[i].state == S_UP && T->c[i].recvd == 0) T->errors++; // no echo in 30 s
    if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD) {
      t_oe1 = now_ns();
      fprintf(stderr, "sent-one\n");
    }
    pthread_barrier_wait(&bar);
  }
  run_for(T, now_ns() + (uint64_t)(O.hold2 * 1e9));
  return NULL;
}

static void raise_nofile(rlim_t need) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur >= need) return;
  struct rlimit want = {need, rl.rlim_max > need ? rl.rlim_max : need};
  if (setrlimit(RLIMIT_NOFILE, &want) < 0) { // not privileged: take the hard cap
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need) fprintf(stderr, "loadgen: RLIMIT_NOFILE %lu < %lu\n",
                                    (unsigned long)rl.rlim_cur, (unsigned long)need);
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --mode closed|open|churn|idle --port P [--host H] [--conns C]\n"
          "  [--size S] [--duration SEC] [--warmup SEC] [--type T] [--threads N]\n"
          "  [--depth D] (closed) [--rate R] (open) [--hold SEC] [--hold2 SEC] [--one-each] (idle)\n");
  exit(2);
}

int main(int argc, char **argv) {
  static struct option lo[] = {
      {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},   {"conns", 1, 0, 'c'},
      {"size", 1, 0, 's'},     {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'},
      {"type", 1, 0, 't'},     {"mode", 1, 0, 'm'},   {"depth", 1, 0, 'D'},
      {"rate", 1, 0, 'r'},     {"threads", 1, 0, 'T'}, {"hold", 1, 0, 'H'},
      {"hold2", 1, 0, '2'},    {"one-each", 0, 0, '1'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (o) {
    case 'h': O.host = optarg; break;
    case 'p': O.port = atoi(optarg); break;
    case 'c': O.conns = atoi(optarg); break;
    case 's': O.size = atoi(optarg); break;
    case 'd': O.duration = atof(optarg); break;
    case 'w': O.warmup = atof(optarg); break;
    case 't': O.type = atoi(optarg); break;
    case 'D': O.depth = atoi(optarg); break;
    case 'r': O.rate = atof(optarg); break;
    case 'T': O.threads = atoi(optarg); break;
    case 'H': O.hold = atof(optarg); break;
    case '2': O.hold2 = atof(optarg); break;
    case '1': O.one_each = 1; break;
    case 'm': {
      int m = -1;
      for (int i = 0; i < 4; i++) if (!strcmp(optarg, mode_names[i])) m = i;
      if (m < 0) usage();
      O.mode = m;
      break;
    }
    default: usage();
    }
  }
  if (O.port <= 0 || O.port > 65535 || O.conns < 1 || O.size < 8 || O.size > 65543 ||
      O.depth < 1 || O.threads < 1 || O.rate <= 0 || O.type < 0 || O.type > 65535)
    usage();
  if (O.threads > O.conns) O.threads = O.conns;
  signal(SIGPIPE, SIG_IGN); // a dead peer must show up as EPIPE, not kill us
  raise_nofile((rlim_t)O.conns + 256);

  dst.sin_family = AF_INET;
  dst.sin_port = htons((uint16_t)O.port);
  if (inet_pton(AF_INET, O.host, &dst.sin_addr) != 1) { fprintf(stderr, "bad --host\n"); return 2; }
  is_loop = (ntohl(dst.sin_addr.s_addr) >> 24) == 127;

  // Template frame: header, then data = seq bytes + a position-dependent pattern.
  uint32_t L = (uint32_t)O.size - 4, n = (uint32_t)O.size - 8;
  tmpl = malloc((size_t)O.size);
  tmpl[0] = (uint8_t)L; tmpl[1] = (uint8_t)(L >> 8); tmpl[2] = (uint8_t)(L >> 16); tmpl[3] = (uint8_t)(L >> 24);
  tmpl[4] = (uint8_t)O.type; tmpl[5] = (uint8_t)(O.type >> 8);
  tmpl[6] = (uint8_t)n; tmpl[7] = (uint8_t)(n >> 8);
  for (uint32_t i = 0; i < n; i++) tmpl[8 + i] = (uint8_t)(i * 31 + 7);
  seq_len = n < 8 ? (int)n : 8;
  stamp(tmpl, 0);
  RCAP = (size_t)O.size * 2 > 16384 ? (size_t)O.size * 2 : 16384;
  size_t k = O.mode == M_CLOSED ? (size_t)O.depth : 1;
  if (O.mode == M_OPEN) k = 16; // lets a lagging conn catch up in fewer writes
  if (k * (size_t)O.size > 65536) k = 65536 / (size_t)O.size;
  if (k < 1) k = 1;
  WCAP = k * (size_t)O.size;

  thr_t *T = calloc((size_t)O.threads, sizeof *T);
  for (int t = 0; t < O.threads; t++) {
    T[t].id = t;
    T[t].n = O.conns / O.threads + (t < O.conns % O.threads);
    T[t].c = calloc((size_t)T[t].n, sizeof(conn_t));
    T[t].ival = 1e9 / (O.rate * T[t].n / O.conns);
    for (int i = 0; i < T[t].n; i++) {
      conn_t *c = &T[t].c[i];
      c->fd = -1;
      c->idx = i;
      c->rbuf = malloc(RCAP);
      c->wbuf = malloc(WCAP);
      c->ts = calloc(O.mode == M_CLOSED ? (size_t)O.depth : 1, sizeof(uint64_t));
      if (!c->rbuf || !c->wbuf || !c->ts) { fprintf(stderr, "out of memory\n"); return 1; }
    }
  }
  t_end = UINT64_MAX; // connect phase: nothing is scheduled yet
  pthread_barrier_init(&bar, NULL, (unsigned)O.threads);
  for (int t = 0; t < O.threads; t++) pthread_create(&T[t].th, NULL, thr_main, &T[t]);
  hist_t *h = calloc(1, sizeof *h);
  uint64_t frames = 0, errors = 0, cerrs = 0;
  for (int t = 0; t < O.threads; t++) {
    pthread_join(T[t].th, NULL);
    for (int i = 0; i < H_BUCKETS; i++) h->c[i] += T[t].h.c[i];
    h->n += T[t].h.n;
    if (T[t].h.max > h->max) h->max = T[t].h.max;
    frames += T[t].frames;
    errors += T[t].errors;
    cerrs += T[t].cerrs;
  }
  struct rusage ru; // this process's own CPU (user + system), for where a run's cores went
  getrusage(RUSAGE_SELF, &ru);
  double cpu_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  double secs = O.duration;
  if (O.mode == M_IDLE) secs = O.one_each && t_oe1 > t_oe0 ? (double)(t_oe1 - t_oe0) / 1e9 : O.hold;
  if (O.mode == M_IDLE && !O.one_each) frames = atomic_load(&total_up); // held connections
  double rate = O.mode == M_IDLE && !O.one_each ? 0 : (secs > 0 ? (double)frames / secs : 0);
  printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%d,\"seconds\":%.3f,\"frames\":%llu,\"rate\":%.1f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"errors\":%llu,"
         "\"connect_errors\":%llu,\"cpu_s\":%.3f}\n",
         mode_names[O.mode], O.conns, O.size, secs, (unsigned long long)frames, rate,
         h_pct(h, 0.5) / 1e3, h_pct(h, 0.99) / 1e3, h_pct(h, 0.999) / 1e3, (double)h->max / 1e3,
         (unsigned long long)errors, (unsigned long long)cerrs, cpu_s);
  fflush(stdout);
  return errors > 0 || frames == 0 || (O.mode == M_IDLE && cerrs > 0) ? 1 : 0;
}

// fanout: group fan-out load for the chat protocol (bench/specs/chat.yaml).
// N members and one sender log in and join one group; the sender keeps --depth
// GroupSay messages in flight, a say being done when every member has it. Every
// GroupDeliver is checked (group, sender, per-member order, text); the figure is
// deliveries per second at the members, with send-to-delivery latency.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
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

enum { T_LOGIN = 1, T_ACK = 3, T_GROUP_JOIN = 6, T_GROUP_SAY = 8, T_GROUP_DELIVER = 9 };
#define GROUP "bench"
#define RCAP (256 * 1024)
#define FIRST_SAY 3 // seqs 1 and 2 are the Login and the GroupJoin

typedef struct {
  int fd, joined;
  uint32_t next_seq; // members: the say they must get next
  uint8_t *rbuf;
  size_t rlen;
  uint8_t *wbuf; // sender: unsent bytes
  size_t wlen, wcap;
} conn_t;

static int members = 1000, depth = 4, text_len = 64, port;
static double duration = 5, warmup = 1;
static conn_t *cs; // members first, the sender last
static uint32_t *delivered; // per in-flight say (ring of depth): members that have it
static uint64_t *sent_at;   // per in-flight say: when it was written
static uint32_t says_sent = FIRST_SAY, says_done = FIRST_SAY;
static uint64_t t_meas, t_end, deliveries, errors;
static hist_t hist;
static int ep;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint8_t *wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) *p++ = (uint8_t)(v >> (8 * i)); return p; }
static uint8_t *wr16(uint8_t *p, uint16_t v) { *p++ = (uint8_t)v; *p++ = (uint8_t)(v >> 8); return p; }
static uint8_t *wrstr(uint8_t *p, const char *s, size_t n) { p = wr16(p, (uint16_t)n); memcpy(p, s, n); return p + n; }
static char text_byte(uint32_t seq, size_t i) { return (char)('a' + (seq + i) % 26); }

// Queues a frame on c and writes as much as the socket takes.
static void put_frame(conn_t *c, uint16_t type, const uint8_t *payload, size_t n) {
  if (c->wlen + 6 + n > c->wcap) {
    c->wcap = (c->wlen + 6 + n) * 2;
    c->wbuf = realloc(c->wbuf, c->wcap);
  }
  uint8_t *p = c->wbuf + c->wlen;
  p = wr32(p, (uint32_t)(n + 2));
  p = wr16(p, type);
  memcpy(p, payload, n);
  c->wlen += 6 + n;
}

static void flush(conn_t *c) {
  size_t off = 0;
  while (off < c->wlen) {
    ssize_t w = write(c->fd, c->wbuf + off, c->wlen - off);
    if (w > 0) { off += (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break; // EPOLLOUT resumes
    fprintf(stderr, "fanout: write: %s\n", strerror(errno));
    exit(1);
  }
  memmove(c->wbuf, c->wbuf + off, c->wlen - off);
  c->wlen -= off;
}

static void say(conn_t *sender) {
  uint8_t payload[4 + 2 + sizeof GROUP + 2 + 4096], *p = payload;
  uint32_t seq = says_sent++;
  char text[4096];
  for (int i = 0; i < text_len; i++) text[i] = text_byte(seq, (size_t)i);
  p = wr32(p, seq);
  p = wrstr(p, GROUP, strlen(GROUP));
  p = wrstr(p, text, (size_t)text_len);
  delivered[seq % (uint32_t)depth] = 0;
  sent_at[seq % (uint32_t)depth] = now_ns();
  put_frame(sender, T_GROUP_SAY, payload, (size_t)(p - payload));
}

static void fill_window(void) {
  conn_t *sender = &cs[members];
  if (!sender->joined) return;
  while (says_sent - says_done < (uint32_t)depth && now_ns() < t_end) say(sender);
  flush(sender);
}

// A GroupDeliver to member m: checked field by field.
static void on_deliver(conn_t *m, const uint8_t *p, size_t n, uint64_t now) {
  size_t gl = n >= 2 ? rd16(p) : 0;
  int ok = n >= 2 + gl + 8 + 2 && gl == strlen(GROUP) && memcmp(p + 2, GROUP, gl) == 0;
  uint32_t from = ok ? rd32(p + 2 + gl) : 0, seq = ok ? rd32(p + 6 + gl) : 0;
  ok = ok && from == (uint32_t)members + 1 && seq == m->next_seq && seq < says_sent;
  const uint8_t *t = p + 10 + gl;
  ok = ok && rd16(t) == (uint16_t)text_len && n == 12 + gl + (size_t)text_len;
  for (int i = 0; ok && i < text_len; i++) ok = t[2 + i] == (uint8_t)text_byte(seq, (size_t)i);
  if (!ok) {
    if (errors++ < 5) fprintf(stderr, "fanout: bad delivery (member %ld, want seq %u)\n", (long)(m - cs), m->next_seq);
    return;
  }
  m->next_seq++;
  if (now >= t_meas && now < t_end) {
    deliveries++;
    h_rec(&hist, now - sent_at[seq % (uint32_t)depth]);
  }
  if (++delivered[seq % (uint32_t)depth] == (uint32_t)members) {
    // The oldest says complete in order; later ones may finish first.
    while (says_done < says_sent && delivered[says_done % (uint32_t)depth] == (uint32_t)members) says_done++;
  }
}

static void on_frame(conn_t *c, uint16_t type, const uint8_t *p, size_t n, uint64_t now) {
  if (type == T_ACK) {
    if (n != 5 || p[4] != 0) {
      if (errors++ < 5) fprintf(stderr, "fanout: ack with status %d\n", n == 5 ? p[4] : -1);
    } else if (rd32(p) == 2) {
      c->joined = 1;
    }
  } else if (type == T_GROUP_DELIVER && c != &cs[members]) {
    on_deliver(c, p, n, now);
  } // LoginOk, GroupMembers, Presence: setup chatter, not measured
}

static void on_read(conn_t *c) {
  for (;;) {
    ssize_t r = read(c->fd, c->rbuf + c->rlen, RCAP - c->rlen);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r <= 0) {
      fprintf(stderr, "fanout: connection %ld closed by the server\n", (long)(c - cs));
      exit(1);
    }
    uint64_t now = now_ns();
    c->rlen += (size_t)r;
    size_t off = 0;
    while (c->rlen - off >= 6) {
      uint32_t len = rd32(c->rbuf + off);
      if (len < 2 || len + 4 > RCAP) { fprintf(stderr, "fanout: bad frame length %u\n", len); exit(1); }
      if (c->rlen - off < 4 + (size_t)len) break;
      on_frame(c, rd16(c->rbuf + off + 4), c->rbuf + off + 6, len - 2, now);
      off += 4 + len;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
  }
}

static void open_conn(conn_t *c, uint32_t user) {
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  dst.sin_addr.s_addr = htonl(0x7f000001u);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0) {
    fprintf(stderr, "fanout: connect: %s\n", strerror(errno));
    exit(1);
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  c->next_seq = FIRST_SAY;
  c->rbuf = malloc(RCAP);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  // Login (seq 1), then GroupJoin (seq 2): the server handles them in order.
  uint8_t payload[64], *p = payload;
  char nick[16];
  int nl = snprintf(nick, sizeof nick, "u%u", user);
  p = wr32(p, 1);
  p = wr32(p, user);
  p = wrstr(p, nick, (size_t)nl);
  put_frame(c, T_LOGIN, payload, (size_t)(p - payload));
  p = wr32(payload, 2);
  p = wrstr(p, GROUP, strlen(GROUP));
  put_frame(c, T_GROUP_JOIN, payload, (size_t)(p - payload));
  flush(c);
}

static void poll_once(int ms) {
  struct epoll_event evs[256];
  int n = epoll_wait(ep, evs, 256, ms);
  for (int i = 0; i < n; i++) {
    conn_t *c = evs[i].data.ptr;
    if (evs[i].events & EPOLLOUT) flush(c);
    if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_read(c);
  }
}

static void usage(void) {
  fprintf(stderr, "usage: fanout --port P [--members N] [--size TEXT_BYTES] [--depth D] [--duration SEC] [--warmup SEC]\n");
  exit(2);
}

int main(int argc, char **argv) {
  static struct option lo[] = {{"port", 1, 0, 'p'}, {"members", 1, 0, 'n'}, {"size", 1, 0, 's'}, {"depth", 1, 0, 'D'},
                               {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (o) {
    case 'p': port = atoi(optarg); break;
    case 'n': members = atoi(optarg); break;
    case 's': text_len = atoi(optarg); break;
    case 'D': depth = atoi(optarg); break;
    case 'd': duration = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    default: usage();
    }
  }
  if (port <= 0 || port > 65535 || members < 1 || depth < 1 || text_len < 0 || text_len > 1024) usage();
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max; // members + sender + a few
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < (rlim_t)members + 16) { fprintf(stderr, "fanout: RLIMIT_NOFILE too low\n"); return 1; }

  ep = epoll_create1(EPOLL_CLOEXEC);
  cs = calloc((size_t)members + 1, sizeof *cs);
  delivered = calloc((size_t)depth, sizeof *delivered);
  sent_at = calloc((size_t)depth, sizeof *sent_at);
  t_meas = t_end = UINT64_MAX;

  // Setup: everyone logs in and joins, the sender last so members are all in.
  uint64_t limit = now_ns() + 60000000000ull;
  for (int i = 0; i < members; i++) {
    open_conn(&cs[i], (uint32_t)i + 1);
    if (i % 64 == 63) poll_once(0); // keep up with the join chatter
  }
  int joined = 0;
  while (joined < members && now_ns() < limit) {
    poll_once(10);
    joined = 0;
    for (int i = 0; i < members; i++) joined += cs[i].joined;
  }
  if (joined < members) { fprintf(stderr, "fanout: only %d of %d members joined\n", joined, members); return 1; }
  open_conn(&cs[members], (uint32_t)members + 1);
  while (!cs[members].joined && now_ns() < limit) poll_once(10);
  if (!cs[members].joined) { fprintf(stderr, "fanout: the sender did not join\n"); return 1; }
  // Let the sender's join notices drain before timing starts.
  uint64_t settle = now_ns() + 200000000ull;
  while (now_ns() < settle) poll_once(10);
  fprintf(stderr, "ready %d\n", members);

  uint64_t t0 = now_ns();
  t_meas = t0 + (uint64_t)(warmup * 1e9);
  t_end = t_meas + (uint64_t)(duration * 1e9);
  uint64_t last_done = says_done, stall_at = t0;
  fill_window();
  while (now_ns() < t_end) {
    poll_once(5);
    fill_window();
    uint64_t now = now_ns();
    if (says_done != last_done) last_done = says_done, stall_at = now;
    else if (now - stall_at > 10000000000ull) { fprintf(stderr, "fanout: no progress for 10 s\n"); errors++; break; }
  }
  printf("{\"mode\":\"fanout\",\"conns\":%d,\"size\":%d,\"seconds\":%.3f,\"frames\":%llu,\"rate\":%.1f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"errors\":%llu,\"connect_errors\":0}\n",
         members, text_len, duration, (unsigned long long)deliveries, (double)deliveries / duration,
         h_pct(&hist, 0.5) / 1e3, h_pct(&hist, 0.99) / 1e3, h_pct(&hist, 0.999) / 1e3, (double)hist.max / 1e3,
         (unsigned long long)errors);
  fflush(stdout);
  return errors || !deliveries ? 1 : 0;
}

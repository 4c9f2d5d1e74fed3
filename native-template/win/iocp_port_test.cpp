// Windows-only tests of the IOCP backend below the engine: drives Port
// directly and checks the exactly-once completion rule op by op, including
// the paths the engine does not use yet (post_disconnect, socket recycling).
// Runs every case in four modes: skip-on-success on/off x zero-byte on/off.
// Last line: "iocp_port: N passed, M failed"; exit code 1 on any failure.
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../src/backend_iocp.h"
#include "../src/port.h"
#include "../test/check.h"
#include "../test/test_net.h"

using namespace iocpgen;

namespace {

// A port plus the storage the engine would normally own.
struct Rig {
  EngineConfig cfg;
  std::unique_ptr<Port> port;
  uint16_t tcp_port = 0;
  std::vector<uint8_t> slab;
  std::unique_ptr<IoContext[]> ios;
  std::unique_ptr<SocketContext[]> scs;
  size_t next_io = 0, next_sc = 0;
  // Completions seen, per IoContext.
  std::map<IoContext*, std::vector<int64_t>> seen;
  // The last accepted peer, as the engine would format it for on_open.
  char peer[64] = {0};
  uint16_t peer_port = 0;

  explicit Rig(bool zero) {
    cfg.workers = 1;
    cfg.accept_backlog = 4;
    cfg.buffer_size = 256;
    cfg.zero_byte_recv = zero;
    cfg.host = "127.0.0.1";
    slab.assign(64 * 256, 0);
    ios.reset(new IoContext[64]);
    for (int i = 0; i < 64; ++i) {
      ios[i].buf = slab.data() + i * 256;
      ios[i].cap = 256;
    }
    scs.reset(new SocketContext[16]);
  }
  bool start() {
    port = make_iocp_port();
    std::string why;
    if (!port->open(cfg, &why) || !port->listen(cfg.host, 0, 64, false, &tcp_port, &why)) {
      fprintf(stderr, "  rig start failed: %s\n", why.c_str());
      return false;
    }
    return true;
  }
  IoContext* io(OpKind k) {
    IoContext* p = &ios[next_io++];
    p->kind = k;
    p->len = p->cap;
    p->off = 0;
    return p;
  }
  SocketContext* sc_for(socket_t s) {
    SocketContext* sc = &scs[next_sc++];
    sc->sock = s;  // the rest is the port's: associate() resets it
    return sc;
  }
  // Dequeues until `want` completions for `target` arrived (or any, if null)
  // or the time is up. Records everything.
  int pump(IoContext* target, size_t want, int ms) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    Completion c[16];
    for (;;) {
      size_t have = target ? seen[target].size() : 0;
      if (target && have >= want) return int(have);
      auto now = std::chrono::steady_clock::now();
      if (now >= end) return int(target ? seen[target].size() : 0);
      int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(end - now).count());
      size_t n = port->dequeue(0, c, 16, left);
      for (size_t i = 0; i < n; ++i) seen[c[i].io].push_back(c[i].result);
    }
  }
  int64_t last(IoContext* io) { return seen[io].empty() ? 999999 : seen[io].back(); }
  size_t count(IoContext* io) { return seen[io].size(); }
  // Accepts one client: returns the server-side SocketContext.
  SocketContext* accept_one(tnet::Client& c) {
    IoContext* a = io(OpKind::accept);
    if (!port->post_accept(a)) return nullptr;
    if (!c.connect(tcp_port)) return nullptr;
    if (pump(a, 1, 3000) != 1 || last(a) != 0 || a->accept_sock == kInvalidSocket) return nullptr;
    SocketContext* sc = sc_for(a->accept_sock);
    if (a->peer_addr_len > 0) net::format_peer(a->addr_area(), peer, sizeof peer, &peer_port);
    if (!port->associate(sc)) return nullptr;
    return sc;
  }
  // The set-up most cases share: the port listening, one client connected and associated.
  SocketContext* start_and_accept(tnet::Client& c) { return start() ? accept_one(c) : nullptr; }
};

// No extra completions may show up later for ops already completed.
void settle(Rig& r) { r.pump(nullptr, 0, 150); }

void t_accept_echo(bool zero) {
  Rig r(zero);
  tnet::Client c;
  SocketContext* sc = r.start_and_accept(c);
  CHECK(sc != nullptr);
  CHECK(std::string(r.peer) == "127.0.0.1" && r.peer_port != 0);
  IoContext* rv = r.io(OpKind::recv);
  CHECK(r.port->post_recv(sc, rv));
  CHECK(c.send_all("ping", 4));
  CHECK(r.pump(rv, 1, 3000) == 1 && r.last(rv) == 4);
  CHECK(memcmp(rv->buf, "ping", 4) == 0);
  IoContext* sd = r.io(OpKind::send);
  memcpy(sd->buf, "pong!", 5);
  sd->len = 5;
  CHECK(r.port->post_send(sc, sd));  // from a "worker" thread now: inline path
  CHECK(r.pump(sd, 1, 3000) == 1 && r.last(sd) == 5);
  char got[5];
  CHECK(c.recv_exact(got, 5) && memcmp(got, "pong!", 5) == 0);
  // Graceful close by the peer: 0.
  IoContext* rv2 = r.io(OpKind::recv);
  CHECK(r.port->post_recv(sc, rv2));
  c.close();
  CHECK(r.pump(rv2, 1, 3000) == 1 && r.last(rv2) == 0);
  settle(r);
  CHECK(r.count(rv) == 1 && r.count(sd) == 1 && r.count(rv2) == 1);
  net::close_socket(sc->sock);
}

// A send posted from a thread that never dequeued goes through the port.
void t_send_other_thread(bool zero) {
  Rig r(zero);
  tnet::Client c;
  SocketContext* sc = r.start_and_accept(c);
  CHECK(sc != nullptr);
  IoContext* sd = r.io(OpKind::send);
  memcpy(sd->buf, "abc", 3);
  sd->len = 3;
  bool ok = false;
  std::thread t([&] { ok = r.port->post_send(sc, sd); });
  t.join();
  CHECK(ok);
  CHECK(r.pump(sd, 1, 3000) == 1 && r.last(sd) == 3);
  settle(r);
  CHECK(r.count(sd) == 1);
  net::close_socket(sc->sock);
}

void t_reset(bool zero) {
  Rig r(zero);
  tnet::Client c;
  SocketContext* sc = r.start_and_accept(c);
  CHECK(sc != nullptr);
  IoContext* rv = r.io(OpKind::recv);
  CHECK(r.port->post_recv(sc, rv));
  c.abort();  // RST: the design's ERROR_NETNAME_DELETED case
  CHECK(r.pump(rv, 1, 3000) == 1);
  CHECK(r.last(rv) == kIoReset);
  // Sending into the dead connection fails, once.
  IoContext* sd = r.io(OpKind::send);
  sd->len = 10;
  CHECK(r.port->post_send(sc, sd));
  CHECK(r.pump(sd, 1, 3000) == 1);
  CHECK(r.last(sd) == kIoReset || r.last(sd) == kIoConnAborted || r.last(sd) == kIoPipe);
  settle(r);
  CHECK(r.count(rv) == 1 && r.count(sd) == 1);
  net::close_socket(sc->sock);
}

void t_cancel(bool zero) {
  Rig r(zero);
  tnet::Client c;
  SocketContext* sc = r.start_and_accept(c);
  CHECK(sc != nullptr);
  IoContext* rv = r.io(OpKind::recv);
  CHECK(r.port->post_recv(sc, rv));
  r.port->cancel(sc);
  CHECK(r.pump(rv, 1, 3000) == 1 && r.last(rv) == kIoCanceled);
  // Posts after cancel complete at once as cancelled, except the one disconnect the
  // engine may post after cancel() for socket reuse (port.h): that one still runs.
  IoContext* rv2 = r.io(OpKind::recv);
  IoContext* sd = r.io(OpKind::send);
  sd->len = 3;
  IoContext* dc = r.io(OpKind::disconnect);
  CHECK(r.port->post_recv(sc, rv2));
  CHECK(r.port->post_send(sc, sd));
  CHECK(r.port->post_disconnect(sc, dc));
  CHECK(r.pump(rv2, 1, 2000) == 1 && r.pump(sd, 1, 2000) == 1 && r.pump(dc, 1, 2000) == 1);
  CHECK(r.last(rv2) == kIoCanceled && r.last(sd) == kIoCanceled && r.last(dc) == 0);
  settle(r);
  CHECK(r.count(rv) == 1 && r.count(rv2) == 1 && r.count(sd) == 1 && r.count(dc) == 1);
  net::close_socket(sc->sock);
}

// Closing the socket with a receive pending (engine finalize order is
// shutdown + cancel + close, but a bare close must also complete once).
void t_close_pending(bool zero) {
  Rig r(zero);
  tnet::Client c;
  SocketContext* sc = r.start_and_accept(c);
  CHECK(sc != nullptr);
  IoContext* rv = r.io(OpKind::recv);
  CHECK(r.port->post_recv(sc, rv));
  net::shutdown_both(sc->sock);
  r.port->cancel(sc);
  net::close_socket(sc->sock);
  CHECK(r.pump(rv, 1, 3000) == 1);
  CHECK(r.last(rv) == kIoCanceled || r.last(rv) == 0 || r.last(rv) == kIoReset);
  settle(r);
  CHECK(r.count(rv) == 1);
}

void t_disconnect(bool zero) {
  Rig r(zero);
  tnet::Client c;
  SocketContext* sc = r.start_and_accept(c);
  CHECK(sc != nullptr);
  IoContext* dc = r.io(OpKind::disconnect);
  CHECK(r.port->post_disconnect(sc, dc));
  CHECK(r.pump(dc, 1, 3000) == 1 && r.last(dc) == 0);
  CHECK(c.wait_closed());  // the peer saw our FIN
  settle(r);
  CHECK(r.count(dc) == 1);
  net::close_socket(sc->sock);
}

// With socket_reuse requested: either the probe found reuse working and a
// recycled socket is accepted into again, or it is off and recycling refuses.
void t_reuse(bool zero) {
  Rig r(zero);
  r.cfg.socket_reuse = true;
  tnet::Client c;
  SocketContext* sc = r.start_and_accept(c);
  CHECK(sc != nullptr);
  socket_t s = sc->sock;
  c.close();
  IoContext* dc = r.io(OpKind::disconnect);
  CHECK(r.port->post_disconnect(sc, dc));
  CHECK(r.pump(dc, 1, 3000) == 1 && r.last(dc) == 0);
  if (!r.port->supports_socket_reuse()) {
    fprintf(stderr, "  (socket reuse not supported here: fallback path checked)\n");
    CHECK(!r.port->reuse_socket(s));  // refused: caller closes
    net::close_socket(s);
    return;
  }
  fprintf(stderr, "  (socket reuse supported: recycled socket path checked)\n");
  CHECK(r.port->reuse_socket(s));
  tnet::Client c2;
  IoContext* a = r.io(OpKind::accept);
  CHECK(r.port->post_accept(a));
  CHECK(a->accept_sock == s);  // the recycled socket, not a new one
  CHECK(c2.connect(r.tcp_port));
  CHECK(r.pump(a, 1, 3000) == 1 && r.last(a) == 0);
  SocketContext* sc2 = r.sc_for(a->accept_sock);
  CHECK(r.port->associate(sc2));  // already bound to the port: still fine
  IoContext* rv = r.io(OpKind::recv);
  CHECK(r.port->post_recv(sc2, rv));
  CHECK(c2.send_all("again", 5));
  CHECK(r.pump(rv, 1, 3000) == 1 && r.last(rv) == 5);
  settle(r);
  CHECK(r.count(a) == 1 && r.count(rv) == 1);
  net::close_socket(s);
}

void t_wake() {
  Rig r(false);
  CHECK(r.start());
  std::atomic<int> returned{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i)
    ts.emplace_back([&] {
      Completion c[4];
      size_t n = r.port->dequeue(0, c, 4, 5000);
      if (n == 0) returned++;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int i = 0; i < 3; ++i) r.port->wake(i);
  for (auto& t : ts) t.join();
  CHECK(returned.load() == 3);
  // Timeout without anything queued returns 0.
  Completion c[4];
  auto t0 = std::chrono::steady_clock::now();
  CHECK(r.port->dequeue(0, c, 4, 50) == 0);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(40));
}

void t_cancel_accepts() {
  Rig r(false);
  CHECK(r.start());
  IoContext* a[4];
  for (auto& p : a) {
    p = r.io(OpKind::accept);
    CHECK(r.port->post_accept(p));
  }
  r.port->cancel_accepts();
  for (auto* p : a) CHECK(r.pump(p, 1, 3000) == 1 && r.last(p) == kIoCanceled);
  for (auto* p : a)
    if (p->accept_sock != kInvalidSocket) net::close_socket(p->accept_sock);
  IoContext* late = r.io(OpKind::accept);
  CHECK(r.port->post_accept(late));
  CHECK(r.pump(late, 1, 2000) == 1 && r.last(late) == kIoCanceled);
  settle(r);
  for (auto* p : a) CHECK(r.count(p) == 1);
}

// Many receives and sends racing with cancel from another thread: every op
// completes exactly once.
void t_cancel_race(bool zero) {
  Rig r(zero);
  CHECK(r.start());
  for (int round = 0; round < 10; ++round) {
    r.next_io = 0;
    r.next_sc = 0;
    r.seen.clear();
    tnet::Client c;
    SocketContext* sc = r.accept_one(c);
    CHECK(sc != nullptr);
    std::vector<IoContext*> ops;
    for (int i = 0; i < 20; ++i) {
      IoContext* p = r.io(i % 2 ? OpKind::send : OpKind::recv);
      if (p->kind == OpKind::send) {
        memset(p->buf, 'x', 64);
        p->len = 64;
      } else {
        p->len = 16;
      }
      ops.push_back(p);
    }
    std::thread sender([&] {
      for (int i = 0; i < 50; ++i) c.send_all("0123456789", 10);
    });
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(200 * round));
      r.port->cancel(sc);
    });
    for (IoContext* p : ops) {
      bool ok = p->kind == OpKind::send ? r.port->post_send(sc, p) : r.port->post_recv(sc, p);
      CHECK(ok);
    }
    canceller.join();
    sender.join();
    for (IoContext* p : ops) CHECK(r.pump(p, 1, 3000) == 1);
    settle(r);
    for (IoContext* p : ops) CHECK(r.count(p) == 1);
    net::close_socket(sc->sock);
  }
}

}  // namespace

int main() {
  tnet::init();
  std::vector<testing::Test> tests;
  for (int skip = 1; skip >= 0; --skip) {
    for (int zero = 0; zero <= 1; ++zero) {
      std::string sfx = std::string(skip ? "/skip" : "/noskip") + (zero ? "/zero" : "/full");
      auto mode = [skip](std::function<void()> f) {
        return [skip, f] {
          _putenv_s("IOCPGEN_IOCP_SKIP_ON_SUCCESS", skip ? "1" : "0");
          f();
        };
      };
      bool z = zero != 0;
      tests.push_back({"accept_echo" + sfx, mode([z] { t_accept_echo(z); })});
      tests.push_back({"send_other_thread" + sfx, mode([z] { t_send_other_thread(z); })});
      tests.push_back({"reset" + sfx, mode([z] { t_reset(z); })});
      tests.push_back({"cancel" + sfx, mode([z] { t_cancel(z); })});
      tests.push_back({"close_pending" + sfx, mode([z] { t_close_pending(z); })});
      tests.push_back({"disconnect" + sfx, mode([z] { t_disconnect(z); })});
      tests.push_back({"reuse_or_fallback" + sfx, mode([z] { t_reuse(z); })});
      tests.push_back({"cancel_race" + sfx, mode([z] { t_cancel_race(z); })});
    }
  }
  tests.push_back({"wake", t_wake});
  tests.push_back({"cancel_accepts", t_cancel_accepts});
  return testing::run_tests("iocp_port", tests);
}

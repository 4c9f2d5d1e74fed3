#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#ifndef _WIN32
#include <netinet/tcp.h>
#endif

namespace iocpgen {

const char* close_reason_name(CloseReason r) {
  switch (r) {
    case CloseReason::none: return "none";
    case CloseReason::peer_closed: return "peer_closed";
    case CloseReason::reset: return "reset";
    case CloseReason::io_error: return "io_error";
    case CloseReason::bad_frame_too_large: return "bad_frame_too_large";
    case CloseReason::bad_frame_too_short: return "bad_frame_too_short";
    case CloseReason::bad_frame_unknown_type: return "bad_frame_unknown_type";
    case CloseReason::bad_frame_length: return "bad_frame_length";
    case CloseReason::slow_consumer: return "slow_consumer";
    case CloseReason::pool_exhausted: return "pool_exhausted";
    case CloseReason::server_shutdown: return "server_shutdown";
    case CloseReason::local_close: return "local_close";
    case CloseReason::idle_timeout: return "idle_timeout";
    case CloseReason::bad_payload: return "bad_payload";
    case CloseReason::handler_error: return "handler_error";
    case CloseReason::frame_timeout: return "frame_timeout";
    case CloseReason::banned: return "banned";
    case CloseReason::per_ip_limit: return "per_ip_limit";
    case CloseReason::connect_rate: return "connect_rate";
    case CloseReason::login_queue_full: return "login_queue_full";
    case CloseReason::count_: break;
  }
  return "?";
}

namespace {

CloseReason reason_for(FrameError e) {
  switch (e) {
    case FrameError::too_large: return CloseReason::bad_frame_too_large;
    case FrameError::too_short: return CloseReason::bad_frame_too_short;
    case FrameError::unknown_type: return CloseReason::bad_frame_unknown_type;
    case FrameError::bad_length: return CloseReason::bad_frame_length;
    case FrameError::none: break;
  }
  return CloseReason::io_error;
}

CloseReason reason_for_result(int64_t res) {
  if (res == 0) return CloseReason::peer_closed;
  if (res == kIoReset || res == kIoConnAborted || res == kIoPipe) return CloseReason::reset;
  return CloseReason::io_error;
}

// Abortive close for clients we throw out: no lingering unsent data.
bool abortive(CloseReason r) {
  switch (r) {
    case CloseReason::bad_frame_too_large:
    case CloseReason::bad_frame_too_short:
    case CloseReason::bad_frame_unknown_type:
    case CloseReason::bad_frame_length:
    case CloseReason::bad_payload:
    case CloseReason::slow_consumer:
    case CloseReason::frame_timeout:
    case CloseReason::pool_exhausted:
    case CloseReason::banned:
    case CloseReason::per_ip_limit:
    case CloseReason::connect_rate:
    case CloseReason::login_queue_full:
      return true;
    default:
      return false;
  }
}

// Closes we start while the peer may still be reading: deliver what was sent first.
bool graceful(CloseReason r) {
  return r == CloseReason::local_close || r == CloseReason::server_shutdown || r == CloseReason::idle_timeout ||
         r == CloseReason::handler_error;
}

AdmissionConfig admission_config(const EngineConfig& c) {
  AdmissionConfig a;
  a.max_connections = c.per_ip_max_connections;
  a.connects_per_sec = c.per_ip_connects_per_sec;
  a.ban_ms = c.per_ip_ban_ms;
  // Live addresses are bounded by the connections; the rest are bans and recent connects.
  a.max_tracked = size_t(c.max_connections) + c.login_queue + 65536;
  return a;
}

}  // namespace

// Collects the frames of one completion and hands them to the sink together.
class Engine::Batch final : public FrameHandler {
 public:
  Batch(Engine* e, SocketContext* sc) : e_(e), conn_(sc->self) {}
  void frame(uint16_t type, const uint8_t* payload, uint32_t len) override {
    if (n_ == kMax) flush();
    views_[n_++] = FrameView{conn_, type, payload, len};
    ++total_;
  }
  uint64_t total() const { return total_; }
  void flush() override {
    if (!n_) return;
    e_->frames_in_.fetch_add(n_, std::memory_order_relaxed);
    e_->sink_->on_frames(views_, n_);
    n_ = 0;
  }

 private:
  static constexpr size_t kMax = 64;
  Engine* e_;
  Handle conn_;
  FrameView views_[kMax];
  size_t n_ = 0;
  uint64_t total_ = 0;  // frames seen, flushed or not
};

Engine::Engine(const EngineConfig& cfg, FrameSink* sink)
    : cfg_(cfg), sink_(sink), admission_(admission_config(cfg)) {
  if (cfg_.workers < 1 || cfg_.caller_driven) cfg_.workers = 1;
  if (cfg_.recv_depth < 1) cfg_.recv_depth = 1;
  if (cfg_.send_depth < 1) cfg_.send_depth = 1;
  if (cfg_.buffer_size < IoContext::kAddrRoom) cfg_.buffer_size = IoContext::kAddrRoom;
  if (cfg_.max_connections < 1) cfg_.max_connections = 1;
  // The per-socket stamps compare by a signed 32-bit difference.
  for (uint32_t* t : {&cfg_.idle_timeout_ms, &cfg_.drain_timeout_ms, &cfg_.frame_timeout_ms})
    *t = std::min<uint32_t>(*t, INT32_MAX);
  table_.reset(new MessageTable(cfg_.messages));
  const uint32_t nio = cfg_.effective_io_contexts();
  const size_t bs = cfg_.buffer_size;
  // Fresh OS pages, touched only when used: a buffer becomes resident when first written.
  slab_.reset(new BufferSlab(size_t(nio) * bs));
  uint8_t* slab = slab_->data();
  ios_.reset(new Pool<IoContext>(nio, [slab, bs](IoContext& io, uint32_t i) {
    io.buf = slab + size_t(i) * bs;
    io.cap = uint32_t(bs);
  }));
#ifndef _WIN32
  // Only io_uring's provided-buffer receives use these; untouched pages elsewhere.
  streams_.reset(new BufferSlab(size_t(cfg_.max_connections) * sizeof(IoContext)));
#endif
  ips_.reset(new BufferSlab(size_t(cfg_.max_connections) * sizeof(IpKey)));
  const MessageTable* table = table_.get();
  const uint32_t max_frame = cfg_.max_frame;
  sockets_.reset(new Pool<SocketContext>(cfg_.max_connections, [table, max_frame](SocketContext& sc, uint32_t) {
    sc.decoder.init(max_frame, table);
  }));
}

Engine::~Engine() { stop(); }

const char* Engine::backend_name() const { return port_ ? port_->name() : "none"; }

bool Engine::start(std::string* why) {
  LockGuard g(life_mu_);
  if (started_) {
    if (why) *why = "already started";
    return false;
  }
  std::string chosen;
  port_ = make_port(cfg_, &chosen);
  if (!port_) {
    if (why) *why = chosen;
    return false;
  }
  if (cfg_.caller_driven && port_->notify_fd() < 0) {
    if (why) *why = std::string("the ") + port_->name() + " backend cannot be driven by its caller";
    port_.reset();
    return false;
  }
  if (!port_->listen(cfg_.host, cfg_.port, cfg_.listen_backlog, cfg_.reuse_port, &bound_port_, why)) {
    port_.reset();
    return false;
  }
  // Said once it serves: a start that fails says only why.
  fprintf(stderr, "iocpgen: backend %s\n", chosen.c_str());
  started_ = true;
  recv_provided_.store(port_->provides_recv_buffers());
  accepting_.store(true);
  if (!cfg_.caller_driven)
    for (int i = 0; i < cfg_.workers; ++i) workers_.emplace_back([this, i] { worker_main(i); });
  keeper_ = std::thread([this] { keeper_main(); });
  for (int i = 0; i < cfg_.accept_backlog; ++i) {
    IoContext* io = acquire_io();
    if (!io) break;
    io->kind = OpKind::accept;
    accepts_outstanding_.fetch_add(1);
    if (!port_->post_accept(io)) {
      accepts_outstanding_.fetch_sub(1);
      release_io(io);
    }
  }
  // The accepts wait for the driver's first poll(): call it now.
  if (cfg_.caller_driven) port_->renotify();
  return true;
}

void Engine::stop() {
  {
    LockGuard g(life_mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    // 1. No new connections; posted accepts complete as cancelled.
    accepting_.store(false);
    port_->cancel_accepts();
    // 2. Refuse the queued logins, then close every client gracefully: what was sent is
    //    delivered, and the keeper resets whoever has not finished after drain_timeout_ms.
    //    A connection set up concurrently sees accepting_ == false and closes itself.
    refuse_queued();
    for (uint32_t i = 0; i < sockets_->capacity(); ++i) {
      Handle h = sockets_->current(i);
      if (h.valid()) close(h, CloseReason::server_shutdown);
    }
  }
  // 3. Wait until every posted op has completed and every slot is back; a caller-driven
  //    engine runs those completions here (no lock held: they call the sink).
  //    Never give up: freeing with ops in flight would be a use-after-free.
  auto t0 = std::chrono::steady_clock::now();
  int warned = 0;
  while (sockets_->in_use() > 0 || accepts_outstanding_.load() > 0) {
    auto waited = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0);
    if (waited.count() >= 10 * (warned + 1)) {
      ++warned;
      fprintf(stderr, "iocpgen: stop: still waiting for %u connections / %d accepts after %llds\n",
              sockets_->in_use(), accepts_outstanding_.load(), (long long)waited.count());
      dump(stderr);
    }
    if (cfg_.caller_driven) drive(64, 1);
    else std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // 4. Stop the keeper, then wake each worker; they see quit_ and return.
  LockGuard g(life_mu_);
  {
    LockGuard k(keeper_mu_);
    keeper_quit_ = true;
  }
  keeper_cv_.notify_all();
  keeper_.join();
  quit_.store(true);
  for (int i = 0; i < (int)workers_.size(); ++i) port_->wake(i);
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  port_.reset();
}

void Engine::worker_main(int worker) {
  Completion batch[64];
  while (!quit_.load(std::memory_order_acquire)) {
    size_t n = port_->dequeue(worker, batch, 64, -1);
    for (size_t i = 0; i < n; ++i) dispatch(batch[i]);
  }
}

size_t Engine::drive(size_t max, int timeout_ms) {
  Completion batch[64];
  const size_t n = port_->dequeue(0, batch, max < 64 ? max : 64, timeout_ms);
  for (size_t i = 0; i < n; ++i) dispatch(batch[i]);
  return n;
}

size_t Engine::poll(size_t max) {
  assert(cfg_.caller_driven && port_);
  port_->ack_notify();
  size_t done = 0;
  while (done < max) {
    const size_t n = drive(max - done, 0);
    if (n == 0) return done;
    done += n;
  }
  // Stopped with work perhaps left: keep the fd readable so the caller comes back.
  port_->renotify();
  return done;
}

int Engine::notify_fd() const { return port_ ? port_->notify_fd() : -1; }

int Engine::max_poll_interval_ms() const { return port_ ? port_->max_poll_interval_ms() : -1; }

void Engine::submit() {
  if (port_) port_->submit();
}

void Engine::dispatch(const Completion& c) {
  switch (c.io->kind) {
    case OpKind::accept: on_accept(c.io, c.result); break;
    case OpKind::recv:
      // A buffer-less context is the provided-buffer receive stream.
      if (c.io->buf == nullptr) on_recv_stream(c);
      else on_recv(c.io, c.result);
      break;
    case OpKind::send: on_send(c.io, c.result); break;
    case OpKind::disconnect: on_disconnect(c.io, c.result); break;
    case OpKind::none:
      assert(false && "completion for an idle io context");
      break;
  }
}

IoContext* Engine::acquire_io() {
  Handle h = ios_->acquire();
  if (!h.valid()) return nullptr;
  IoContext* io = ios_->slot(h.index);
  io->self = h;
  return io;
}

void Engine::release_io(IoContext* io) { ios_->release(io->self); }

// ---- accept ---------------------------------------------------------------

void Engine::on_accept(IoContext* io, int64_t res) {
  socket_t s = io->accept_sock;
  io->accept_sock = kInvalidSocket;
  if (res >= 0 && s != kInvalidSocket) {
    if (accepting_.load()) {
      Accepted a;
      a.sock = s;
      a.addr_len = io->peer_addr_len > 0 ? std::min<int>(io->peer_addr_len, int(sizeof a.addr)) : 0;
      if (a.addr_len > 0) {
        memcpy(a.addr, io->addr_area(), size_t(a.addr_len));
        a.ip = IpKey::of(a.addr);
      }
      accept_client(a);
    } else {
      net::close_socket(s);
    }
  } else {
    if (s != kInvalidSocket) net::close_socket(s);
    if (res != kIoCanceled) accept_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  // Re-post (also after errors) so the accept backlog never drains.
  if (accepting_.load() && port_->post_accept(io)) return;
  release_io(io);
  accepts_outstanding_.fetch_sub(1);
}

// Limits first, so a flood costs no per-socket context; then a context, or the login
// queue when every context is taken (and while others wait, so nobody jumps the queue).
void Engine::accept_client(Accepted& a) {
  if (admission_.enabled() && a.addr_len > 0) {
    switch (admission_.admit(a.ip, clock_ms())) {
      case Verdict::admit: a.ip_counted = true; break;
      case Verdict::banned: return refuse(a, CloseReason::banned);
      case Verdict::per_ip_limit: return refuse(a, CloseReason::per_ip_limit);
      case Verdict::connect_rate: return refuse(a, CloseReason::connect_rate);
      // Every tracked address is connected, banned or recent: refuse like a ban.
      case Verdict::table_full: return refuse(a, CloseReason::banned);
    }
  }
  if (cfg_.login_queue > 0 && queue_len_.load() > 0) {
    if (!enqueue_login(a)) refuse(a, CloseReason::login_queue_full);
    return;
  }
  Handle h = sockets_->acquire();
  if (h.valid()) return setup_connection(a, h, false);
  if (cfg_.login_queue == 0) return refuse(a, CloseReason::pool_exhausted);
  if (!enqueue_login(a)) refuse(a, CloseReason::login_queue_full);
}

// RST at once so the client learns quickly. Counted first, so the count is visible by
// the time the client sees the reset.
void Engine::refuse(Accepted& a, CloseReason why) {
  count_close(why);
  if (a.ip_counted) forget_ip(a.ip);
  a.ip_counted = false;
  net::set_linger_zero(a.sock);
  net::close_socket(a.sock);
  a.sock = kInvalidSocket;
}

void Engine::forget_ip(const IpKey& ip) { admission_.release(ip); }

void Engine::setup_connection(Accepted& a, Handle h, bool from_queue) {
  const socket_t s = a.sock;
  int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
  SocketContext* sc = sockets_->slot(h.index);
  {
    LockGuard g(sc->mu);
    {
      // The backend reads the socket under its own lock; the rest of sc->port is its own,
      // reset by associate().
      LockGuard pg(sc->port.mu);
      sc->sock = s;
    }
    sc->self = h;
    if (a.ip_counted) ip_of(h.index) = a.ip;
    sc->ip_counted = a.ip_counted;
    sc->fin_sent = false;
    sc->last_rx_tick.store(tick_ms(), std::memory_order_relaxed);
    sc->drain_start_tick.store(0, std::memory_order_relaxed);
    sc->frame_start_tick.store(0, std::memory_order_relaxed);
    sc->close_reason = CloseReason::none;
    sc->ops_count = 0;
    sc->decoder.reset();
    sc->rx_post_seq = sc->rx_next_seq = 0;
    sc->rx_parked = nullptr;
    sc->rx_busy = false;
    sc->sendq.reset();
    sc->sends_posted = 0;
    sc->announced = false;
    sc->reusable = false;
    sc->reuse_wanted = false;
    // The "open" reference plus one held by this setup, so a concurrent
    // close() from the sink cannot free the slot under us.
    sc->outstanding.store(2);
    sc->state.store(ConnState::open);
  }
  conn_current_.fetch_add(1, std::memory_order_relaxed);
  conn_total_.fetch_add(1, std::memory_order_relaxed);
  // Associate before on_open: the sink may send from on_open. Only announced
  // connections get on_close.
  if (!port_->associate(sc)) {
    close_sc(sc, h, CloseReason::io_error);
    release_ref(sc);
    return;
  }
  sc->announced = true;
  if (from_queue && cfg_.queue_notice_type) {
    // Position 0: admitted. Ahead of anything the application sends.
    const uint8_t zero[4] = {0, 0, 0, 0};
    send_frame(h, cfg_.queue_notice_type, zero, 4);
  }
  // The peer's text is made here only: a connection keeps its address as an IpKey.
  char peer[64] = {0};
  uint16_t peer_port = 0;
  if (a.addr_len > 0) net::format_peer(a.addr, peer, sizeof peer, &peer_port);
  sink_->on_open(h, peer, peer_port);
  if (!accepting_.load()) {
    // Raced with stop(): it may have missed this slot.
    close_sc(sc, h, CloseReason::server_shutdown);
  } else if (port_->provides_recv_buffers()) {
    // One stream per connection: the kernel keeps its chunks in order.
    post_recv_stream(sc);
  } else {
    for (uint32_t i = 0; i < cfg_.recv_depth; ++i) {
      if (!post_recv_new(sc)) break;
    }
  }
  release_ref(sc);  // the setup reference
}

// ---- posting ----------------------------------------------------------------

bool Engine::post_locked(SocketContext* sc, IoContext* io) {
  const ConnState st = sc->state.load();
  if (st != ConnState::open && st != ConnState::draining) return false;
  io->owner = sc->self;
  sc->outstanding.fetch_add(1);
  ++sc->ops_count;
  const bool send = io->kind == OpKind::send;
  bool ok = send ? port_->post_send(sc, io) : port_->post_recv(sc, io);
  if (ok && send) sends_posted_.fetch_add(1, std::memory_order_relaxed);
  if (!ok) {
    --sc->ops_count;
    sc->outstanding.fetch_sub(1);  // cannot reach zero: the open reference is held
  }
  return ok;
}

bool Engine::post_recv_new(SocketContext* sc) {
  IoContext* io = acquire_io();
  if (!io) {
    close_sc(sc, Handle{}, CloseReason::pool_exhausted);
    return false;
  }
  const bool ok = post_recv(sc, io);
  if (!ok) release_io(io);
  return ok;
}

// Posts io as the socket's next receive, numbered so completions are handled in order.
bool Engine::post_recv(SocketContext* sc, IoContext* io) {
  io->kind = OpKind::recv;
  io->len = io->cap;
  io->off = 0;
  LockGuard g(sc->mu);
  io->seq = sc->rx_post_seq;
  const bool ok = post_locked(sc, io);
  if (ok) ++sc->rx_post_seq;
  return ok;
}

// No pool context: an idle connection holds no receive buffer. Called once per
// connection, before anything else uses the slot's stream context.
bool Engine::post_recv_stream(SocketContext* sc) {
  if (!streams_) return false;
  IoContext* io = new (stream_of(sc->self.index)) IoContext();
  LockGuard g(sc->mu);
  io->kind = OpKind::recv;
  io->seq = sc->rx_post_seq;
  bool ok = post_locked(sc, io);
  if (ok) ++sc->rx_post_seq;
  else io->kind = OpKind::none;
  return ok;
}

// ---- receive ----------------------------------------------------------------

// Provided-buffer receives: only the owning ring's worker delivers them, in
// stream order, so no parking is needed. The buffer goes back to the ring
// after the decoder has consumed it.
void Engine::on_recv_stream(const Completion& c) {
  IoContext* io = c.io;
  SocketContext* sc = sockets_->slot(io->owner.index);
  const int64_t res = c.result;
  const ConnState st = sc->state.load();
  if (res > 0 && (st == ConnState::open || st == ConnState::draining)) {
    // A closing connection's late chunks are not counted: it costs nothing more.
    bytes_in_.fetch_add(uint64_t(res), std::memory_order_relaxed);
    sc->last_rx_tick.store(tick_ms(), std::memory_order_relaxed);
    // Draining: the bytes are read (so the peer's FIN is seen) and dropped.
    if (st == ConnState::open && c.data) {
      Batch batch(this, sc);
      FrameError err = sc->decoder.feed(c.data, size_t(res), batch);
      batch.flush();
      if (err != FrameError::none) close_sc(sc, Handle{}, reason_for(err));
      else note_partial_frame(sc, batch.total() > 0);
    }
  } else if (res <= 0) {
    close_failed(sc, res);
  }
  if (c.data) port_->recycle_recv_buffer(c);
  if (c.more) return;  // still posted: its reference stays
  bool ok = false;
  {
    LockGuard g(sc->mu);
    --sc->ops_count;
    ++sc->rx_next_seq;
    // The stream ended with data (e.g. CQ overflow): post it again.
    if (res > 0) {
      io->seq = sc->rx_post_seq;
      ok = post_locked(sc, io);
      if (ok) ++sc->rx_post_seq;
    }
    if (!ok) io->kind = OpKind::none;
  }
  release_ref(sc);
}

void Engine::on_recv(IoContext* io, int64_t res) {
  SocketContext* sc = sockets_->slot(io->owner.index);
  io->result = res;
  Batch batch(this, sc);
  uint32_t drops = 0;
  {
    LockGuard g(sc->mu);
    --sc->ops_count;
    // Park in seq order; with recv_depth > 1 completions may arrive out of order.
    IoContext** p = &sc->rx_parked;
    while (*p && int32_t((*p)->seq - io->seq) < 0) p = &(*p)->q_next;
    io->q_next = *p;
    *p = io;
    if (sc->rx_busy) return;  // the busy thread will process it
    sc->rx_busy = true;
  }
  for (;;) {
    IoContext* next = nullptr;
    {
      LockGuard g(sc->mu);
      if (sc->rx_parked && sc->rx_parked->seq == sc->rx_next_seq) {
        next = sc->rx_parked;
        sc->rx_parked = next->q_next;
        next->q_next = nullptr;
        ++sc->rx_next_seq;
      } else {
        sc->rx_busy = false;
      }
    }
    if (!next) break;
    process_recv(sc, next, batch);
    ++drops;
  }
  // Only now: a drop may free sc.
  while (drops--) release_ref(sc);
}

void Engine::process_recv(SocketContext* sc, IoContext* io, Batch& batch) {
  int64_t res = io->result;
  if (res <= 0) {
    close_failed(sc, res);
    release_io(io);
    return;
  }
  const ConnState st = sc->state.load();
  if (st != ConnState::open && st != ConnState::draining) {
    release_io(io);  // condemned: not counted, not re-posted
    return;
  }
  bytes_in_.fetch_add(uint64_t(res), std::memory_order_relaxed);
  sc->last_rx_tick.store(tick_ms(), std::memory_order_relaxed);
  if (st == ConnState::draining) {
    // Read on and drop the bytes, so the peer's FIN (or the deadline) ends the drain.
    if (!post_recv(sc, io)) release_io(io);
    return;
  }
  const uint64_t before = batch.total();
  FrameError err = sc->decoder.feed(io->buf, size_t(res), batch);
  batch.flush();
  if (err != FrameError::none) {
    close_sc(sc, Handle{}, reason_for(err));
    release_io(io);
    return;
  }
  note_partial_frame(sc, batch.total() > before);
  // Re-post the same context. A successful re-post took its own reference; the caller
  // drops the old one.
  if (!post_recv(sc, io)) release_io(io);
}

// Only this socket's receive path writes the stamp (one receive is processed at a time),
// the keeper reads it. A completed frame restarts the clock for the one after it.
void Engine::note_partial_frame(SocketContext* sc, bool completed_any) {
  if (!cfg_.frame_timeout_ms) return;
  if (sc->decoder.buffered() == 0) {
    sc->frame_start_tick.store(0, std::memory_order_relaxed);
  } else if (completed_any || sc->frame_start_tick.load(std::memory_order_relaxed) == 0) {
    // Never 0 while a frame is pending: 0 means none.
    sc->frame_start_tick.store(std::max<uint32_t>(tick_ms(), 1), std::memory_order_relaxed);
  }
}

// ---- send -------------------------------------------------------------------

bool Engine::send(Handle conn, const void* data, size_t len, uint32_t frames) {
  Part p{static_cast<const uint8_t*>(data), len};
  return send_parts(conn, &p, 1, frames);
}

bool Engine::send_frame(Handle conn, uint16_t type, const void* payload, uint32_t len) {
  uint8_t hdr[kFrameHeader];
  uint32_t l = len + 2;
  hdr[0] = uint8_t(l); hdr[1] = uint8_t(l >> 8); hdr[2] = uint8_t(l >> 16); hdr[3] = uint8_t(l >> 24);
  hdr[4] = uint8_t(type); hdr[5] = uint8_t(type >> 8);
  Part parts[2] = {{hdr, kFrameHeader}, {static_cast<const uint8_t*>(payload), len}};
  bool ok = send_parts(conn, parts, 2, 1);
  return ok;
}

// Under sc->mu: moves up to one buffer of queued bytes into io for posting.
void Engine::fill_send(SocketContext* sc, IoContext* io) {
  SendQueue& q = *sc->sendq;  // callers check queued() > 0
  const size_t n = std::min<size_t>(q.queued(), io->cap);
  memcpy(io->buf, q.bytes.data() + q.head, n);
  io->kind = OpKind::send;
  io->len = uint32_t(n);
  io->off = 0;
  q.head += n;
  if (q.head == q.bytes.size()) {
    // Drained: give back the memory of a burst, keep a small queue's.
    if (q.bytes.capacity() > kKeepSendQueue) {
      sc->sendq.reset();
    } else {
      q.bytes.clear();
      q.head = 0;
    }
  } else if (q.head >= q.bytes.size() / 2) {
    q.bytes.erase(q.bytes.begin(), q.bytes.begin() + std::ptrdiff_t(q.head));
    q.head = 0;
  }
}

bool Engine::send_parts(Handle conn, const Part* parts, size_t nparts, uint32_t frames) {
  SocketContext* sc = sockets_->slot(conn.index);
  // Cheap early out; the handle is re-checked under the lock below.
  if (!sc || sc->state.load() != ConnState::open) return false;
  size_t total = 0;
  for (size_t i = 0; i < nparts; ++i) total += parts[i].len;
  if (!total) return true;

  CloseReason close_for = CloseReason::none;
  IoQueue failed;
  {
    LockGuard g(sc->mu);
    if (sc->self != conn || sc->state.load() != ConnState::open) return false;
    if (sc->queued() + total > cfg_.send_queue_limit) {
      if (cfg_.drop_when_slow) {
        frames_dropped_.fetch_add(frames ? frames : 1, std::memory_order_relaxed);
        return false;
      }
      close_for = CloseReason::slow_consumer;
    } else {
      size_t part = 0, skip = 0;  // next byte to take: parts[part].data + skip
      bool stuck = false;          // no context to post into, or a post failed
      // Nothing queued ahead of these bytes: copy them straight into send contexts, one
      // copy instead of two (through sendq).
      while (sc->queued() == 0 && part < nparts && sc->sends_posted < cfg_.send_depth) {
        IoContext* io = acquire_io();
        if (!io) {
          if (sc->sends_posted == 0) close_for = CloseReason::pool_exhausted;
          stuck = true;
          break;
        }
        size_t n = 0;
        while (part < nparts && n < io->cap) {
          const size_t take = std::min(parts[part].len - skip, size_t(io->cap) - n);
          memcpy(io->buf + n, parts[part].data + skip, take);
          n += take;
          skip += take;
          if (skip == parts[part].len) {
            ++part;
            skip = 0;
          }
        }
        io->kind = OpKind::send;
        io->len = uint32_t(n);
        io->off = 0;
        if (!post_locked(sc, io)) {
          failed.push(io);
          stuck = true;
          break;
        }
        ++sc->sends_posted;
      }
      if (part < nparts && !sc->sendq) sc->sendq.reset(new SendQueue);
      for (; part < nparts; ++part, skip = 0) {
        std::vector<uint8_t>& q = sc->sendq->bytes;
        q.insert(q.end(), parts[part].data + skip, parts[part].data + parts[part].len);
      }
      // Post while this connection has send contexts to spare; the rest waits in sendq
      // and is posted from on_send as sends complete.
      while (!stuck && sc->queued() > 0 && sc->sends_posted < cfg_.send_depth) {
        IoContext* io = acquire_io();
        if (!io) {
          // Only fatal when nothing is in flight to drain the queue later.
          if (sc->sends_posted == 0) close_for = CloseReason::pool_exhausted;
          break;
        }
        fill_send(sc, io);
        if (post_locked(sc, io)) {
          ++sc->sends_posted;
        } else {
          failed.push(io);
          break;
        }
      }
    }
  }
  while (IoContext* io = failed.pop()) release_io(io);
  if (close_for != CloseReason::none) {
    close_sc(sc, conn, close_for);
    return false;
  }
  if (frames) frames_out_.fetch_add(frames, std::memory_order_relaxed);
  return true;
}

void Engine::on_send(IoContext* io, int64_t res) {
  SocketContext* sc = sockets_->slot(io->owner.index);
  bool reposted = false;
  {
    LockGuard g(sc->mu);
    --sc->ops_count;
    --sc->sends_posted;
    // Refill this context from the queue and post it again: no pool round trip.
    const ConnState st = sc->state.load();
    if (res >= 0 && (st == ConnState::open || st == ConnState::draining) && sc->queued() > 0) {
      fill_send(sc, io);
      if (post_locked(sc, io)) {
        ++sc->sends_posted;
        reposted = true;
      }
    }
    if (res >= 0 && st == ConnState::draining) finish_drain(sc);
  }
  if (res >= 0) {
    bytes_out_.fetch_add(uint64_t(res), std::memory_order_relaxed);
  } else {
    close_failed(sc, res);
  }
  if (!reposted) release_io(io);
  release_ref(sc);
}

void Engine::on_disconnect(IoContext* io, int64_t res) {
  SocketContext* sc = sockets_->slot(io->owner.index);
  {
    LockGuard g(sc->mu);
    --sc->ops_count;
    sc->reusable = res == 0;
  }
  release_io(io);
  release_ref(sc);
}

// ---- close ------------------------------------------------------------------

bool Engine::close(Handle conn, CloseReason reason) {
  SocketContext* sc = sockets_->slot(conn.index);
  if (!sc || !conn.valid()) return false;
  return close_sc(sc, conn, reason);
}

// expect invalid = caller already holds a reference to sc (a completion).
// open -> draining for graceful reasons; open or draining -> closing for the rest (a
// failing drain, the peer's FIN, a reset, a bad frame, the drain deadline). The first
// close names the reason; exactly one transition drops the open reference.
bool Engine::close_sc(SocketContext* sc, Handle expect, CloseReason reason) {
  std::unique_ptr<SendQueue> unsent;  // freed after the lock is released
  bool first, draining = false;
  {
    LockGuard g(sc->mu);
    if (expect.valid() && sc->self != expect) return false;
    const ConnState st = sc->state.load();
    first = st == ConnState::open;
    if (!first && !(st == ConnState::draining && !graceful(reason))) return false;
    if (first) sc->close_reason = reason;
    else draining_.fetch_sub(1);
    if (first && graceful(reason)) {
      draining_.fetch_add(1);
      // The deadline before the state: the keeper reads the state, then the deadline.
      sc->drain_start_tick.store(tick_ms(), std::memory_order_relaxed);
      sc->state.store(ConnState::draining);
      finish_drain(sc);
      draining = true;
    } else {
      sc->state.store(ConnState::closing);
      // Queued bytes were never posted; posted sends complete (or cancel) on their own.
      unsent.swap(sc->sendq);
    }
  }
  if (first) count_close(reason);
  if (draining) {
    wake_keeper();  // it enforces the drain deadline
    return true;
  }
  // Socket reuse (IOCP DisconnectEx): not after a reset we send. The port's view of
  // "requested" counts, as its environment may override the config.
  const bool want = port_->socket_reuse_requested() && !abortive(reason);
  const bool reuse = want && port_->supports_socket_reuse();
  if (want) {
    LockGuard g(sc->mu);
    sc->reuse_wanted = true;
  }
  // A condemned client gets a reset, not a FIN, and nothing it sends later is read.
  if (abortive(reason)) {
    if (!net::reset_now(sc->sock)) net::shutdown_both(sc->sock);
  } else if (!reuse) {
    net::shutdown_both(sc->sock);
  }
  // Cancel first: cancelling after DisconnectEx was posted would cancel it too.
  port_->cancel(sc);
  if (reuse && !post_disconnect(sc)) net::shutdown_both(sc->sock);
  release_ref(sc);  // drop the open reference
  return true;
}

// Draining and nothing left to send: half-close, so the peer reads everything, then
// our FIN. Receives stay posted until the peer's FIN ends the connection.
void Engine::finish_drain(SocketContext* sc) {
  if (sc->fin_sent || sc->sends_posted > 0 || sc->queued() > 0) return;
  sc->fin_sent = true;
  net::shutdown_send(sc->sock);
}

// The only post made while closing; we still hold the open reference.
bool Engine::post_disconnect(SocketContext* sc) {
  IoContext* io = acquire_io();
  if (!io) return false;
  io->kind = OpKind::disconnect;
  io->owner = sc->self;
  bool ok;
  {
    LockGuard g(sc->mu);
    sc->outstanding.fetch_add(1);
    ++sc->ops_count;
    ok = port_->post_disconnect(sc, io);
    if (!ok) {
      --sc->ops_count;
      sc->outstanding.fetch_sub(1);
    }
  }
  if (!ok) release_io(io);
  return ok;
}

// An operation ended without data. A cancel is expected once a close has begun; one that
// finds the connection still open (no close of ours asked for it) must end it all the same:
// with nothing posted, no later completion would, and its context would never come back.
void Engine::close_failed(SocketContext* sc, int64_t res) {
  if (res != kIoCanceled) close_sc(sc, Handle{}, reason_for_result(res));
  else if (sc->state.load() == ConnState::open) close_sc(sc, Handle{}, CloseReason::io_error);
}

void Engine::release_ref(SocketContext* sc) {
  if (sc->outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) finalize(sc);
}

// Runs exactly once per connection: on the thread whose decrement hit zero.
void Engine::finalize(SocketContext* sc) {
  Handle h;
  CloseReason reason;
  socket_t s;
  std::unique_ptr<SendQueue> rest;  // a drained queue's kept capacity; freed unlocked
  {
    LockGuard g(sc->mu);
    assert(sc->ops_count == 0 && sc->rx_parked == nullptr);
    rest.swap(sc->sendq);
    h = sc->self;
    reason = sc->close_reason;
    sc->state.store(ConnState::closed);
    LockGuard pg(sc->port.mu);
    s = sc->sock;
    sc->sock = kInvalidSocket;
  }
  bool reusable, wanted;
  {
    LockGuard g(sc->mu);
    reusable = sc->reusable;
    wanted = sc->reuse_wanted;
    sc->reusable = sc->reuse_wanted = false;
  }
  if (sc->announced) sink_->on_close(h, reason);
  if (reusable && port_->reuse_socket(s)) {
    sockets_reused_.fetch_add(1, std::memory_order_relaxed);
  } else {
    if (wanted) socket_reuse_fallbacks_.fetch_add(1, std::memory_order_relaxed);
    net::close_socket(s);
  }
  conn_current_.fetch_sub(1, std::memory_order_relaxed);
  bool counted;
  IpKey ip;
  {
    LockGuard g(sc->mu);
    sc->state.store(ConnState::free);
    counted = sc->ip_counted;
    sc->ip_counted = false;
    if (counted) ip = ip_of(h.index);
  }
  if (counted) forget_ip(ip);
  sockets_->release(h);
  if (cfg_.login_queue > 0 && queue_len_.load() > 0) wake_keeper();  // a context is free
}

void Engine::dump(FILE* out) {
  for (uint32_t i = 0; i < sockets_->capacity(); ++i) {
    SocketContext* sc = sockets_->slot(i);
    if (!sc) break;  // slots are built in order: none past this one was ever used
    LockGuard g(sc->mu);
    if (sc->state.load() == ConnState::free) continue;
    fprintf(out, "conn %u/%u state=%d outstanding=%u ops=%u sends_posted=%u queued=%zu rx_busy=%d\n",
            sc->self.index, sc->self.gen, int(sc->state.load()), sc->outstanding.load(), sc->ops_count,
            sc->sends_posted, sc->queued(), int(sc->rx_busy));
  }
}

// Under the I/O pool's lock, so no buffer being discarded can be handed out meanwhile.
void Engine::trim_buffers() {
  const size_t bs = cfg_.buffer_size;
  BufferSlab& slab = *slab_;
  // Counted run by run, as the pages go, so the stat never lags far behind what left.
  ios_->trim_cold([&](uint32_t first, uint32_t n) {
    const uint64_t released = slab.discard(size_t(first) * bs, size_t(n) * bs);
    if (released) buffer_bytes_released_.fetch_add(released, std::memory_order_relaxed);
  });
}

EngineStats Engine::stats() {
  EngineStats s;
  s.connections_current = conn_current_.load();
  s.connections_total = conn_total_.load();
  s.socket_pool = PoolStats{sockets_->capacity(), sockets_->in_use(), sockets_->high_water()};
  s.io_pool = PoolStats{ios_->capacity(), ios_->in_use(), ios_->high_water()};
  s.bytes_in = bytes_in_.load();
  s.bytes_out = bytes_out_.load();
  s.frames_in = frames_in_.load();
  s.frames_out = frames_out_.load();
  s.sends_posted = sends_posted_.load();
  s.accept_errors = accept_errors_.load();
  s.recv_buffers_provided = recv_provided_.load();
  s.frames_dropped = frames_dropped_.load();
  s.drain_timeouts = drain_timeouts_.load();
  s.sockets_reused = sockets_reused_.load();
  s.socket_reuse_fallbacks = socket_reuse_fallbacks_.load();
  {
    LockGuard k(keeper_mu_);
    s.login_queue_current = uint32_t(queue_.size());
    s.login_queue_high_water = queue_high_water_;
    s.login_queued_total = queued_total_;
    s.login_queue_admitted = queue_admitted_;
    s.login_queue_abandoned = queue_abandoned_;
  }
  const Admission::Counts ac = admission_.counts(clock_ms());
  s.addresses_tracked = ac.tracked;
  s.addresses_banned = ac.banned_now;
  s.bans_total = ac.bans_total;
  s.buffer_bytes_released = buffer_bytes_released_.load();
  for (size_t i = 0; i < static_cast<size_t>(CloseReason::count_); ++i) s.closes[i] = closes_[i].load();
  return s;
}

}  // namespace iocpgen

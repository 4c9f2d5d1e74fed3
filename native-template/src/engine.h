// Engine: pools, worker threads and the completion dispatch of the design,
// over any Port backend.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "admission.h"
#include "config.h"
#include "frame.h"
#include "io_context.h"
#include "pool.h"
#include "port.h"
#include "slab.h"
#include "socket_context.h"

namespace iocpgen {

// One decoded frame. payload is valid only during FrameSink::on_frames.
struct FrameView {
  Handle conn;
  uint16_t type;
  const uint8_t* payload;
  uint32_t len;
};

// Called on worker threads. Frames of one connection arrive in order and
// never concurrently; on_close is the last call for a handle.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void on_open(Handle conn, const char* peer, uint16_t peer_port) {
    (void)conn; (void)peer; (void)peer_port;
  }
  virtual void on_frames(const FrameView* frames, size_t count) = 0;
  virtual void on_close(Handle conn, CloseReason reason) { (void)conn; (void)reason; }
};

struct PoolStats {
  uint32_t capacity = 0;
  uint32_t in_use = 0;
  uint32_t high_water = 0;
};

struct EngineStats {
  uint64_t connections_current = 0;
  uint64_t connections_total = 0;
  PoolStats socket_pool;
  PoolStats io_pool;
  uint64_t bytes_in = 0, bytes_out = 0;
  uint64_t frames_in = 0, frames_out = 0;
  uint64_t sends_posted = 0;  // socket sends (SQE, WSASend, send): with frames_out, the corking
  uint64_t accept_errors = 0;
  bool recv_buffers_provided = false;  // io_uring provided-buffer receives in use
  uint64_t frames_dropped = 0;         // drop_when_slow: sends dropped on a full queue
  uint64_t drain_timeouts = 0;         // graceful closes reset after drain_timeout_ms
  // IOCP socket reuse: sockets handed back to the port for a later AcceptEx, and closes
  // that closed the socket although reuse was asked for (no working TF_REUSE_SOCKET, a
  // failed disconnect, or a full spare list).
  uint64_t sockets_reused = 0;
  uint64_t socket_reuse_fallbacks = 0;
  // The login queue (sockets waiting for a per-socket context).
  uint32_t login_queue_current = 0;
  uint32_t login_queue_high_water = 0;
  uint64_t login_queued_total = 0;
  uint64_t login_queue_admitted = 0;
  uint64_t login_queue_abandoned = 0;  // left while waiting
  // Per-address limits.
  uint64_t addresses_tracked = 0;
  uint64_t addresses_banned = 0;       // under a ban now
  uint64_t bans_total = 0;
  // Bytes of I/O buffer pages handed back to the OS after lying unused for
  // buffer_trim_ms (Linux: the resident pages dropped; Windows: the pages reset).
  uint64_t buffer_bytes_released = 0;
  uint64_t closes[static_cast<size_t>(CloseReason::count_)] = {};
  uint64_t close_count(CloseReason r) const { return closes[static_cast<size_t>(r)]; }
};

class Engine {
 public:
  Engine(const EngineConfig& cfg, FrameSink* sink);
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Opens the port, listens, posts accept_backlog accepts, starts workers.
  bool start(std::string* why);
  // Graceful: stop accepting, close clients (server_shutdown), wait for every
  // posted op to complete, wake and join workers. Idempotent.
  void stop();

  // Queues bytes for the connection and posts up to send_depth sends; the rest
  // waits in the connection's byte queue (at most send_queue_limit bytes).
  // `frames` is how many whole frames the bytes hold, for the stats. false:
  // stale handle, connection closing, or the connection was closed for
  // slow_consumer / pool_exhausted by this call.
  bool send(Handle conn, const void* data, size_t len, uint32_t frames = 0);
  bool send_frame(Handle conn, uint16_t type, const void* payload, uint32_t len);
  // One connection's bytes in pieces (e.g. several frames of one batch): one lock, and
  // one send when they fit a buffer.
  struct Part {
    const uint8_t* data;
    size_t len;
  };
  bool send_parts(Handle conn, const Part* parts, size_t nparts, uint32_t frames);
  // Starts closing; on_close follows once every posted op has completed. local_close,
  // server_shutdown and idle_timeout are graceful: sends already accepted are delivered,
  // then the connection is shut down for sending and ends when the peer closes too, or
  // is reset after drain_timeout_ms. Other reasons close at once (bad frames reset).
  bool close(Handle conn, CloseReason reason = CloseReason::local_close);

  // Caller-driven engines (cfg.caller_driven) only. poll() runs up to `max` completions on
  // the calling thread, which must always be the same one, and returns how many ran; it
  // never blocks. notify_fd() is readable when poll() has work. submit() hands the kernel
  // the sends and receives posted on that thread since the last poll() (io_uring batches
  // them until then).
  size_t poll(size_t max);
  int notify_fd() const;
  // The driver must also call poll() at least this often (-1: when notify_fd() says so only).
  int max_poll_interval_ms() const;
  void submit();

  EngineStats stats();
  // Diagnostics: one line per open connection with its posted ops.
  void dump(FILE* out);
  uint16_t port() const { return bound_port_; }
  // Resident bytes of the I/O buffer slab (Linux; 0 where the OS cannot tell), for tests.
  size_t buffer_bytes_resident() const { return slab_->resident_bytes(); }
  // The backend, for tests that look below the engine (null before start()).
  Port* backend() { return port_.get(); }
  const char* backend_name() const;

 private:
  class Batch;

  void worker_main(int worker);
  // Runs one dequeue's worth of completions on this thread; timeout as Port::dequeue.
  size_t drive(size_t max, int timeout_ms);
  void dispatch(const Completion& c);
  void on_accept(IoContext* io, int64_t res);
  void on_recv(IoContext* io, int64_t res);
  void on_recv_stream(const Completion& c);
  void on_send(IoContext* io, int64_t res);
  void on_disconnect(IoContext* io, int64_t res);
  // Caller drops the completed op's reference afterwards.
  void process_recv(SocketContext* sc, IoContext* io, Batch& batch);
  // After a feed: stamps when a partial frame began, for frame_timeout_ms.
  void note_partial_frame(SocketContext* sc, bool completed_any);
  // Accepted sockets: limits, then a context, the login queue, or a refusal.
  struct Accepted {
    socket_t sock = kInvalidSocket;
    IpKey ip;
    bool ip_counted = false;
    alignas(8) unsigned char addr[128];
    int addr_len = 0;
    uint32_t told = 0;  // the queue position last sent
  };
  void accept_client(Accepted& a);
  void refuse(Accepted& a, CloseReason why);
  void setup_connection(Accepted& a, Handle h, bool from_queue);
  void forget_ip(const IpKey& ip);
  // The keeper thread (engine_keeper.cpp): login queue, idle timeouts, drain deadlines.
  bool enqueue_login(Accepted& a);
  void keeper_main();
  void admit_queued();
  void tell_positions();
  void refuse_queued();
  void enforce_timeouts(uint32_t now);
  // Hands the pages of I/O buffers free for a whole buffer_trim_ms back to the OS.
  void trim_buffers();
  void wake_keeper();
  uint64_t clock_ms() const {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0_).count());
  }
  // The clock modulo 2^32, for the per-socket stamps (socket_context.h).
  uint32_t tick_ms() const { return uint32_t(clock_ms()); }
  IoContext* stream_of(uint32_t slot) { return reinterpret_cast<IoContext*>(streams_->data()) + slot; }
  IpKey& ip_of(uint32_t slot) { return reinterpret_cast<IpKey*>(ips_->data())[slot]; }
  bool post_recv_new(SocketContext* sc);
  bool post_recv(SocketContext* sc, IoContext* io);
  bool post_recv_stream(SocketContext* sc);
  bool post_locked(SocketContext* sc, IoContext* io) REQUIRES(sc->mu);
  bool close_sc(SocketContext* sc, Handle expect, CloseReason reason);
  void close_failed(SocketContext* sc, int64_t res);
  // Draining: every accepted send is done, so send our FIN (once).
  void finish_drain(SocketContext* sc) REQUIRES(sc->mu);
  bool post_disconnect(SocketContext* sc);
  void release_ref(SocketContext* sc);
  void finalize(SocketContext* sc);
  IoContext* acquire_io();
  void release_io(IoContext* io);
  void fill_send(SocketContext* sc, IoContext* io) REQUIRES(sc->mu);
  // A drained send queue keeps at most this much capacity for the next burst.
  static constexpr size_t kKeepSendQueue = 16 * 1024;
  void count_close(CloseReason r) { closes_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed); }

  EngineConfig cfg_;
  FrameSink* sink_;
  std::unique_ptr<MessageTable> table_;
  std::unique_ptr<BufferSlab> slab_;  // io_contexts * buffer_size
  // Per socket slot, out of SocketContext: the provided-buffer receive (io_uring only) and
  // the counted peer address (per-address limits only). Pages are touched only when used.
  std::unique_ptr<BufferSlab> streams_;
  std::unique_ptr<BufferSlab> ips_;
  std::unique_ptr<Pool<SocketContext>> sockets_;
  std::unique_ptr<Pool<IoContext>> ios_;
  std::unique_ptr<Port> port_;
  std::vector<std::thread> workers_;
  RankedMutex life_mu_{LockRank::engine};
  bool started_ GUARDED_BY(life_mu_) = false;
  bool stopped_ GUARDED_BY(life_mu_) = false;
  std::atomic<bool> accepting_{false};
  std::atomic<bool> quit_{false};
  std::atomic<bool> recv_provided_{false};
  std::atomic<int> accepts_outstanding_{0};
  uint16_t bound_port_ = 0;

  std::atomic<uint64_t> conn_current_{0}, conn_total_{0};
  std::atomic<uint64_t> bytes_in_{0}, bytes_out_{0}, frames_in_{0}, frames_out_{0};
  std::atomic<uint64_t> sends_posted_{0};
  std::atomic<uint64_t> accept_errors_{0};
  std::atomic<uint64_t> closes_[static_cast<size_t>(CloseReason::count_)] = {};
  std::atomic<uint64_t> frames_dropped_{0}, drain_timeouts_{0};
  std::atomic<uint64_t> sockets_reused_{0}, socket_reuse_fallbacks_{0};
  std::atomic<uint64_t> buffer_bytes_released_{0};

  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();  // clock_ms() zero
  Admission admission_;
  std::thread keeper_;
  RankedMutex keeper_mu_{LockRank::keeper};
  std::condition_variable_any keeper_cv_;
  std::deque<Accepted> queue_ GUARDED_BY(keeper_mu_);
  bool keeper_quit_ GUARDED_BY(keeper_mu_) = false;
  bool keeper_poke_ GUARDED_BY(keeper_mu_) = false;   // a context came free
  bool positions_stale_ GUARDED_BY(keeper_mu_) = false;
  uint32_t queue_high_water_ GUARDED_BY(keeper_mu_) = 0;
  uint64_t queued_total_ GUARDED_BY(keeper_mu_) = 0;
  uint64_t queue_admitted_ GUARDED_BY(keeper_mu_) = 0;
  uint64_t queue_abandoned_ GUARDED_BY(keeper_mu_) = 0;
  std::atomic<uint32_t> queue_len_{0};  // read without the lock on the accept path
  std::atomic<uint32_t> draining_{0};   // connections in ConnState::draining
};

}  // namespace iocpgen

// Per-socket context (the design's completion key).
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "admission.h"
#include "frame.h"
#include "io_context.h"
#include "lock.h"
#include "net.h"
#include "pool.h"

namespace iocpgen {

// open -> draining (graceful close: queued sends finish, then FIN, then the peer's FIN)
//      -> closing (every posted op is cancelled) -> closed -> free.
enum class ConnState : uint8_t { free, open, draining, closing, closed };

enum class CloseReason : uint8_t {
  none = 0,
  peer_closed,
  reset,
  io_error,
  bad_frame_too_large,
  bad_frame_too_short,
  bad_frame_unknown_type,
  bad_frame_length,
  slow_consumer,
  pool_exhausted,
  server_shutdown,
  local_close,
  idle_timeout,
  frame_timeout,  // a started frame was not completed in time (slow-loris)
  // Decided by the application (the TypeScript runtime): a payload its codec refused
  // (a reset, like a bad frame), and a handler that threw (graceful).
  bad_payload,
  handler_error,
  // Refused at accept, before a per-socket context was taken (never announced).
  banned,
  per_ip_limit,
  connect_rate,
  login_queue_full,
  count_  // number of reasons
};
const char* close_reason_name(CloseReason r);

// Backend-private per-socket state. Each backend uses the fields it needs.
struct PortSocketState {
  RankedMutex mu{LockRank::port_socket};  // epoll: guards the queues below
  IoQueue recv_q;     // posted, not yet performed
  IoQueue send_q;
  bool cancelled = false;  // posts after cancel complete at once with kIoCanceled
  bool registered = false;
  bool send_inflight = false;  // uring: one send SQE in flight per socket
  bool recv_inflight = false;  // uring: one recv SQE in flight per socket
  bool starved = false;        // uring: multishot recv ended with ENOBUFS, waits for a buffer
  int ring = 0;       // uring: owning ring
  void* extra = nullptr;

  // A backend's associate() starts each connection's state afresh with this: the state is
  // the backend's alone, so the engine never writes it.
  void reset() {
    recv_q = IoQueue{};
    send_q = IoQueue{};
    cancelled = registered = send_inflight = recv_inflight = starved = false;
    ring = 0;
    extra = nullptr;
  }
};

struct SocketContext {
  RankedMutex mu{LockRank::socket};
  socket_t sock = kInvalidSocket;
  Handle self;
  std::atomic<ConnState> state{ConnState::free};
  // Posted operations + 1 while open. Whoever drops it to zero frees the slot.
  std::atomic<uint32_t> outstanding{0};
  CloseReason close_reason = CloseReason::none;
  bool announced = false;  // on_open was delivered, so on_close is owed
  bool reusable = false;   // disconnect completed: hand the socket back to the port
  bool reuse_wanted = false;  // closed in a way that could keep the socket (counted either way)
  bool fin_sent = false;   // draining: our side is shut down for sending
  IpKey ip;                // counted in the engine's admission table while connected
  bool ip_counted = false;
  // Engine clock (ms) of the last received bytes, for the idle timeout; and when a
  // draining connection is reset if it has not finished.
  std::atomic<uint64_t> last_rx_ms{0};
  std::atomic<uint64_t> drain_deadline_ms{0};
  // Engine clock (ms) when the partial frame in the decoder began; 0: none pending.
  std::atomic<uint64_t> frame_started_ms{0};

  // Posted ops, for diagnostics (under mu).
  IoContext* ops_head = nullptr;
  uint32_t ops_count = 0;

  // Receive side (under mu): in-order processing for recv_depth > 1.
  FrameDecoder decoder;
  uint64_t rx_post_seq = 0;
  uint64_t rx_next_seq = 0;
  IoContext* rx_parked = nullptr;   // completed out of order (q_next list)
  bool rx_busy = false;
  // Provided receive buffers: the one posted recv, holding no buffer.
  IoContext rx_stream;

  // Send side (under mu). Bytes beyond what the posted sends hold wait here, bounded by
  // send_queue_limit; they hold no I/O context, so a connection never has more than
  // send_depth send contexts from the pool, as the pool arithmetic assumes.
  std::vector<uint8_t> sendq;
  size_t sendq_head = 0;            // bytes of sendq already copied into a posted send
  uint32_t sends_posted = 0;
  size_t queued() const { return sendq.size() - sendq_head; }

  PortSocketState port;

  void link_op(IoContext* io) {
    io->op_prev = nullptr;
    io->op_next = ops_head;
    if (ops_head) ops_head->op_prev = io;
    ops_head = io;
    ++ops_count;
  }
  void unlink_op(IoContext* io) {
    if (io->op_prev) io->op_prev->op_next = io->op_next; else ops_head = io->op_next;
    if (io->op_next) io->op_next->op_prev = io->op_prev;
    io->op_prev = io->op_next = nullptr;
    --ops_count;
  }
};

}  // namespace iocpgen

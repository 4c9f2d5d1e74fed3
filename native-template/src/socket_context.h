// Per-socket context (the design's completion key).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
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
  int ring = 0;       // uring: owning ring
  bool cancelled = false;  // posts after cancel complete at once with kIoCanceled
  bool registered = false;
  bool send_inflight = false;  // uring: one send SQE in flight per socket
  bool recv_inflight = false;  // uring: one recv SQE in flight per socket
  bool starved = false;        // uring: multishot recv ended with ENOBUFS, waits for a buffer
  bool skip_on_success = false;  // IOCP: FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set

  // A backend's associate() starts each connection's state afresh with this: the state is
  // the backend's alone, so the engine never writes it.
  void reset() {
    recv_q = IoQueue{};
    send_q = IoQueue{};
    ring = 0;
    cancelled = registered = send_inflight = recv_inflight = starved = skip_on_success = false;
  }
};

// Bytes waiting to be posted (under SocketContext::mu). Allocated only while a connection
// has more to send than its posted sends hold, so an idle connection pays one pointer.
struct SendQueue {
  std::vector<uint8_t> bytes;
  size_t head = 0;  // bytes already copied into a posted send
  size_t queued() const { return bytes.size() - head; }
};

// One per connection slot, so its size is every idle connection's cost: at most 192 bytes
// (asserted below). Fields are grouped by size so that nothing pads.
struct SocketContext {
  RankedMutex mu{LockRank::socket};
  socket_t sock = kInvalidSocket;
  // Posted operations + 1 while open. Whoever drops it to zero frees the slot.
  std::atomic<uint32_t> outstanding{0};
  Handle self;
  std::atomic<ConnState> state{ConnState::free};
  CloseReason close_reason = CloseReason::none;
  bool announced = false;  // on_open was delivered, so on_close is owed
  bool reusable = false;   // disconnect completed: hand the socket back to the port
  bool reuse_wanted = false;  // closed in a way that could keep the socket (counted either way)
  bool fin_sent = false;   // draining: our side is shut down for sending
  bool ip_counted = false;  // its address is counted in the admission table (Engine::ips_)
  bool rx_busy = false;    // a thread is processing this socket's receives (under mu)
  // Engine ticks (Engine::tick_ms: milliseconds modulo 2^32, compared by wrapping
  // difference, so they hold for any engine lifetime while each timeout is below 2^31 ms):
  // the last received bytes (idle timeout), the start of a graceful close (drain deadline),
  // and when the decoder's partial frame began (0: none pending; a start at tick 0 is
  // stamped 1).
  std::atomic<uint32_t> last_rx_tick{0};
  std::atomic<uint32_t> drain_start_tick{0};
  std::atomic<uint32_t> frame_start_tick{0};
  // Receive side (under mu): in-order processing for recv_depth > 1. Sequence numbers
  // are compared modulo 2^32; fewer than recv_depth receives are ever outstanding.
  uint32_t rx_post_seq = 0;
  uint32_t rx_next_seq = 0;
  // Posted ops (under mu), for diagnostics and the check that none is left at the end.
  uint32_t ops_count = 0;
  uint32_t sends_posted = 0;  // under mu
  IoContext* rx_parked = nullptr;   // completed out of order (q_next list)
  FrameDecoder decoder;
  // Send side (under mu). Bytes beyond what the posted sends hold wait here, bounded by
  // send_queue_limit; they hold no I/O context, so a connection never has more than
  // send_depth send contexts from the pool, as the pool arithmetic assumes.
  std::unique_ptr<SendQueue> sendq;
  size_t queued() const { return sendq ? sendq->queued() : 0; }

  PortSocketState port;
};

// Kept out of line, in slot-indexed arrays touched only when used (engine.h): the peer
// address, needed only with per-address limits (Engine::ips_), and the buffer-less receive
// of provided-buffer receives, needed only on io_uring (Engine::streams_).
static_assert(sizeof(SocketContext) <= 192, "SocketContext is every idle connection's cost: keep it at most 192 bytes");

}  // namespace iocpgen

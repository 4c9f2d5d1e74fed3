// Completion-port interface. Every backend (io_uring, epoll, IOCP) implements
// it; the engine only talks to this.
//
// Ownership rule: every post_* that returns true yields EXACTLY ONE
// Completion for that IoContext, also when it fails at once or is cancelled
// (backends queue a synthetic completion in that case). Until then the
// backend owns the IoContext; afterwards the engine does. post_* returns
// false only if the op was not taken at all (no completion will come; the
// caller still owns the IoContext).
//
// cancel() may complete an op with the result the engine's shutdown produces
// instead of kIoCanceled. With cfg.socket_reuse and supports_socket_reuse(),
// the engine closes through post_disconnect() and hands the socket back with
// reuse_socket().
//
// Provided receive buffers (provides_recv_buffers() true after open()): the
// engine posts one recv per connection with a buffer-less IoContext (buf ==
// nullptr). Its data arrives in Completions with `data` set; `more` = true
// means the op is still posted (the backend keeps the IoContext) and another
// completion follows. Exactly one completion per post has more == false: that
// one ends the op, so the ownership rule above holds per post. The engine
// gives every `data` back with recycle_recv_buffer() on the same worker
// thread, after feeding it to the decoder.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "config.h"
#include "io_context.h"
#include "socket_context.h"

namespace iocpgen {

// Completion results: bytes >= 0, or one of these (-errno style on every
// platform; the IOCP backend maps WSA/Win32 errors onto them).
constexpr int64_t kIoPipe = -32;        // EPIPE: write on a shut-down socket
constexpr int64_t kIoConnAborted = -103;
constexpr int64_t kIoReset = -104;      // ECONNRESET, ERROR_NETNAME_DELETED
constexpr int64_t kIoNoBuffers = -105;
constexpr int64_t kIoTimedOut = -110;
constexpr int64_t kIoCanceled = -125;   // ECANCELED, ERROR_OPERATION_ABORTED
constexpr int64_t kIoFailed = -5;       // EIO: anything else

struct Completion {
  IoContext* io;
  int64_t result;  // bytes transferred, or negative error
  const uint8_t* data = nullptr;  // recv into a provided buffer: the bytes
  uint32_t buf_id = 0;            // backend's id of that buffer
  bool more = false;              // op stays posted; not its final completion
};

class Port {
 public:
  virtual ~Port() = default;
  virtual const char* name() const = 0;

  // Creates the kernel objects. Called once, before anything else.
  virtual bool open(const EngineConfig& cfg, std::string* why) = 0;

  // Creates, binds and listens on the listening socket (port 0 = ephemeral;
  // the bound port is written to *bound_port). reuse_port: shards of one server share
  // the port and the kernel spreads accepts over them (SO_REUSEPORT; not on Windows).
  virtual bool listen(const std::string& host, uint16_t port, int backlog, bool reuse_port,
                      uint16_t* bound_port, std::string* why) = 0;

  // Binds an accepted socket to the port (CreateIoCompletionPort with the
  // SocketContext as key; epoll_ctl ADD; uring: pick the owning ring).
  virtual bool associate(SocketContext* sc) = 0;

  // Accept: on success result = 0, io->accept_sock is the new socket and
  // io->addr_area() holds the peer sockaddr, peer_addr_len bytes.
  virtual bool post_accept(IoContext* io) = 0;
  // Recv into io->buf[0, io->len). result 0 = peer closed.
  virtual bool post_recv(SocketContext* sc, IoContext* io) = 0;
  // Send io->buf[io->off, io->len). Backends complete a send only when all of
  // it was written or on error, and keep sends of one socket in post order.
  virtual bool post_send(SocketContext* sc, IoContext* io) = 0;
  // Graceful disconnect (DisconnectEx with reuse on Windows). Others complete
  // at once after shutdown().
  virtual bool post_disconnect(SocketContext* sc, IoContext* io) = 0;
  virtual bool supports_socket_reuse() const { return false; }
  // Reuse was asked for here (IOCP with socket_reuse): with supports_socket_reuse()
  // false, the engine closes each socket instead and counts the fallback.
  virtual bool socket_reuse_requested() const { return false; }
  // Called by the engine with a socket whose post_disconnect completed with
  // 0, once nothing else is posted on it. true: the backend keeps it for a
  // later accept. false: the engine closes it.
  virtual bool reuse_socket(socket_t s) {
    (void)s;
    return false;
  }

  // See "Provided receive buffers" above. Valid after open().
  virtual bool provides_recv_buffers() const { return false; }
  virtual void recycle_recv_buffer(const Completion& c) { (void)c; }

  // Cancels every op posted on the socket; each still completes exactly once
  // (kIoCanceled, or whatever result it reaches first: the engine has already
  // called shutdown() on the socket, so 0 / kIoPipe / kIoReset are fine too).
  // After cancel() the engine posts nothing on the socket except, with
  // socket reuse, one post_disconnect.
  virtual void cancel(SocketContext* sc) = 0;
  // Same for posted accepts. Closes the listening socket.
  virtual void cancel_accepts() = 0;

  // Waits up to timeout_ms (-1 = forever) and returns up to max completions
  // for this worker. Returns 0 on timeout or after wake(worker).
  virtual size_t dequeue(int worker, Completion* out, size_t max, int timeout_ms) = 0;
  // Makes dequeue(worker) return promptly (IOCP: PostQueuedCompletionStatus).
  virtual void wake(int worker) = 0;

  // Caller-driven engines (cfg.caller_driven, one worker: 0). notify_fd() becomes readable
  // when dequeue(0, ..., 0) has work; -1: not supported. The driver calls ack_notify()
  // before it drains, and renotify() when it stops with work left, so the fd stays a
  // faithful signal. submit() hands the kernel what posts on the driver's thread prepared.
  virtual int notify_fd() const { return -1; }
  virtual void ack_notify() {}
  virtual void renotify() {}
  // > 0: the fd alone is not enough, and the driver must also poll at least this often
  // (io_uring with DEFER_TASKRUN: see backend_uring.cpp). -1: the fd says it all.
  virtual int max_poll_interval_ms() const { return -1; }
  virtual void submit() {}
};

// Picks the backend: cfg.backend, then env IOCPGEN_BACKEND=epoll|uring|iocp,
// then the best available. Logs one line saying which and why.
std::unique_ptr<Port> make_port(const EngineConfig& cfg, std::string* why_chosen);

// Backend factories (defined only where the backend is built).
#ifdef _WIN32
std::unique_ptr<Port> make_iocp_port();
#else
std::unique_ptr<Port> make_epoll_port();
#ifdef IOCPGEN_HAVE_URING
std::unique_ptr<Port> make_uring_port();
#endif
#endif

}  // namespace iocpgen

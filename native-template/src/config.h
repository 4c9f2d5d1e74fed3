// Engine configuration. Generated servers fill it from a generated header;
// tests fill it directly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace iocpgen {

enum class BackendChoice { automatic, uring, epoll, iocp };

// Allowed payload length (bytes after the 2-byte type id) for one type id.
struct MessageSpec {
  uint16_t type;
  uint32_t min_payload;
  uint32_t max_payload;
};

struct EngineConfig {
  int workers = 2;
  // No worker threads: the thread that calls Engine::poll() runs every completion, woken by
  // Engine::notify_fd() (io_uring and epoll; IOCP needs its workers). `workers` is ignored.
  bool caller_driven = false;
  int accept_backlog = 16;        // accepts kept posted at all times
  int listen_backlog = 1024;
  uint32_t max_connections = 1024;
  uint32_t io_contexts = 0;       // 0: derived from connections and depths
  uint32_t buffer_size = 16384;   // bytes per I/O context
  uint32_t recv_depth = 1;        // receives posted per connection
  uint32_t send_depth = 2;        // sends posted per connection; more are queued
  uint32_t max_frame = 65536;     // whole frame including the 6-byte header
  size_t send_queue_limit = 1u << 20;  // queued (unposted) bytes before slow_consumer
  uint32_t recv_buffers = 0;      // io_uring provided buffers per ring (buffer_size each); 0: derived
  bool zero_byte_recv = false;    // IOCP only: 0-byte reads so idle sockets hold no buffer
  bool socket_reuse = false;      // IOCP only: DisconnectEx(TF_REUSE_SOCKET) + reuse_socket()
  bool reuse_port = false;        // Linux: SO_REUSEPORT, so shard processes share the port
  bool drop_when_slow = false;    // a full send queue drops the new bytes instead of closing

  // Flood limits, checked at accept before a per-socket context is taken. 0 disables.
  uint32_t per_ip_max_connections = 0;
  uint32_t per_ip_connects_per_sec = 0;
  uint32_t per_ip_ban_ms = 60000;  // an address that breaks a limit is refused this long

  // When every per-socket context is taken: queue up to login_queue accepted sockets and
  // admit them in order as contexts free (0: refuse as pool_exhausted). Queued clients get
  // a frame of type queue_notice_type with a u32 position (0 = admitted); 0: no notices.
  uint32_t login_queue = 0;
  uint16_t queue_notice_type = 0;

  uint32_t idle_timeout_ms = 0;    // close a connection silent this long; 0 disables
  uint32_t drain_timeout_ms = 5000;  // a graceful close resets the connection after this
  // A frame once begun must be complete within this, or the connection is reset
  // (frame_timeout): any byte resets the idle timer, so a trickle could hold a context
  // forever. 0 disables.
  uint32_t frame_timeout_ms = 0;
  // The engine caps the idle, drain and frame timeouts at 2^31 - 1 ms (24 days).
  // I/O buffers unused this long give their pages back to the OS (the keeper checks this
  // often); 0 keeps them resident.
  uint32_t buffer_trim_ms = 10000;
  std::string host = "0.0.0.0";
  uint16_t port = 0;              // 0: ephemeral, see Engine::port()
  BackendChoice backend = BackendChoice::automatic;
  std::vector<MessageSpec> messages;  // known type ids; others close the connection

  uint32_t effective_io_contexts() const {
    if (io_contexts) return io_contexts;
    return max_connections * (recv_depth + send_depth + 2) + (uint32_t)accept_backlog;
  }
};

}  // namespace iocpgen

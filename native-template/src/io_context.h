// Per-I/O context (the design's per-IO structure). One is posted per
// operation and comes back in exactly one Completion.
#pragma once
#include <cstdint>

#include "net.h"
#include "pool.h"

namespace iocpgen {

enum class OpKind : uint8_t { none, accept, recv, send, disconnect };

struct IoContext {
#ifdef _WIN32
  // Must stay the first member: the IOCP backend casts OVERLAPPED* <-> IoContext*.
  OVERLAPPED overlapped;
#endif
  OpKind kind = OpKind::none;
  Handle self;                 // this context's pool handle
  Handle owner;                // owning socket (index + generation); invalid for accepts
  uint8_t* buf = nullptr;      // fixed slice of the engine's buffer slab
  uint32_t cap = 0;            // slice size
  uint32_t len = 0;            // bytes valid (send) / requested (recv)
  uint32_t off = 0;            // bytes already sent (partial sends)
  uint32_t seq = 0;            // receive order (recv_depth > 1), compared modulo 2^32
  socket_t accept_sock = kInvalidSocket;  // accepted socket (AcceptEx: pre-created)
  int peer_addr_len = 0;       // bytes of the peer sockaddr in addr_area()
  // Intrusive link: whichever single queue currently owns the context (backend queue,
  // send queue, reorder list, done list).
  IoContext* q_next = nullptr;
  int64_t result = 0;          // backend scratch for synthetic completions
  void* backend = nullptr;     // backend scratch

  // An accept keeps the peer's sockaddr (AcceptEx: both addresses) at the start of its
  // buffer rather than in every context; the engine makes each buffer at least this big.
  static constexpr uint32_t kAddrRoom = 128;
  unsigned char* addr_area() { return buf; }

  // Pool hook. The buffer is not cleared: whoever takes the context next overwrites what it
  // uses (len for a send, the bytes received for a receive), and nothing reads past that.
  void on_pool_release() {
    kind = OpKind::none;
    owner = Handle{};
    len = off = 0;
    seq = 0;
    accept_sock = kInvalidSocket;
    peer_addr_len = 0;
    q_next = nullptr;
    result = 0;
    backend = nullptr;
  }
};

// Singly linked FIFO over IoContext::q_next.
struct IoQueue {
  IoContext* head = nullptr;
  IoContext* tail = nullptr;
  bool empty() const { return head == nullptr; }
  void push(IoContext* io) {
    io->q_next = nullptr;
    if (tail) tail->q_next = io; else head = io;
    tail = io;
  }
  void push_front(IoContext* io) {
    io->q_next = head;
    head = io;
    if (!tail) tail = io;
  }
  IoContext* pop() {
    IoContext* io = head;
    if (io) {
      head = io->q_next;
      if (!head) tail = nullptr;
      io->q_next = nullptr;
    }
    return io;
  }
  // Moves everything onto the end of other.
  void splice_to(IoQueue& other) {
    if (!head) return;
    if (other.tail) other.tail->q_next = head; else other.head = head;
    other.tail = tail;
    head = tail = nullptr;
  }
};

}  // namespace iocpgen

// The one lock type of the core. Every mutex carries a rank; a thread may only
// take a lock whose rank is higher than every lock it already holds (see
// LOCKS.md). Debug builds (IOCPGEN_DEBUG) check this per thread; the clang
// thread-safety macros let -Wthread-safety check guarded fields.
#pragma once
#include <cassert>
#include <cstdint>
#include <mutex>

#if defined(__clang__)
#define IOCPGEN_TSA(x) __attribute__((x))
#else
#define IOCPGEN_TSA(x)
#endif
#define CAPABILITY(x) IOCPGEN_TSA(capability(x))
#define SCOPED_CAPABILITY IOCPGEN_TSA(scoped_lockable)
#define GUARDED_BY(x) IOCPGEN_TSA(guarded_by(x))
#define ACQUIRE(...) IOCPGEN_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) IOCPGEN_TSA(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) IOCPGEN_TSA(try_acquire_capability(__VA_ARGS__))
#define REQUIRES(...) IOCPGEN_TSA(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) IOCPGEN_TSA(locks_excluded(__VA_ARGS__))

namespace iocpgen {

// Lower rank is taken first. Gaps leave room for new locks.
enum class LockRank : uint8_t {
  engine = 10,        // Engine lifecycle (start/stop)
  socket = 20,        // SocketContext::mu: state, send queue, op list, rx order
  port_socket = 30,   // epoll: per-socket posted-op queues
  port_ring = 35,     // io_uring: per-ring submission side
  port_queue = 40,    // epoll: shared synthetic completion queue
  pool = 50,          // Pool free list (leaf)
  bridge = 60,        // N-API bridge: the event queue handed to JavaScript (leaf)
};

namespace lockcheck {
#ifdef IOCPGEN_DEBUG
// Held ranks of this thread, in acquisition order.
struct Held {
  uint8_t ranks[16];
  int n = 0;
};
inline Held& held() {
  thread_local Held h;
  return h;
}
inline void on_lock(LockRank r) {
  Held& h = held();
  assert(h.n < 16 && "too many nested locks");
  assert((h.n == 0 || h.ranks[h.n - 1] < static_cast<uint8_t>(r)) && "lock rank order violated");
  h.ranks[h.n++] = static_cast<uint8_t>(r);
}
inline void on_unlock(LockRank r) {
  Held& h = held();
  // Locks are scoped, so the released one is normally the newest.
  for (int i = h.n - 1; i >= 0; --i) {
    if (h.ranks[i] == static_cast<uint8_t>(r)) {
      for (int j = i; j + 1 < h.n; ++j) h.ranks[j] = h.ranks[j + 1];
      --h.n;
      return;
    }
  }
  assert(false && "unlock of a lock not held");
}
#else
inline void on_lock(LockRank) {}
inline void on_unlock(LockRank) {}
#endif
}  // namespace lockcheck

class CAPABILITY("mutex") RankedMutex {
 public:
  explicit RankedMutex(LockRank rank) : rank_(rank) {}
  RankedMutex(const RankedMutex&) = delete;
  RankedMutex& operator=(const RankedMutex&) = delete;

  void lock() ACQUIRE() {
    lockcheck::on_lock(rank_);
    m_.lock();
  }
  void unlock() RELEASE() {
    m_.unlock();
    lockcheck::on_unlock(rank_);
  }
  LockRank rank() const { return rank_; }

 private:
  std::mutex m_;
  LockRank rank_;
};

class SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(RankedMutex& m) ACQUIRE(m) : m_(m) { m_.lock(); }
  ~LockGuard() RELEASE() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  RankedMutex& m_;
};

}  // namespace iocpgen

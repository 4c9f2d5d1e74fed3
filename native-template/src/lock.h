// The one lock type of the core. Every mutex carries a rank from lock_ranks.h,
// which iocpgen generates from the declared order in locks.yaml. Debug builds
// (IOCPGEN_DEBUG) check each acquisition against that order per thread and abort
// naming both acquisition sites; release builds compile the checks out. The clang
// thread-safety macros let -Wthread-safety check guarded fields.
#pragma once
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "lock_ranks.h"
#include "net.h"  // Windows headers in the order winsock needs

#if defined(__linux__)
#include <atomic>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif !defined(_WIN32)
#include <mutex>
#endif

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

namespace lockcheck {
#ifdef IOCPGEN_DEBUG
// The locks this thread holds, innermost last, with where each was taken.
struct HeldLock {
  LockRank rank;
  const char* file;
  int line;
};
struct Held {
  HeldLock locks[16];
  int n = 0;
};
inline Held& held() {
  thread_local Held h;
  return h;
}
[[noreturn]] inline void violation(const char* what, LockRank r, const char* file, int line, const HeldLock* other) {
  std::fprintf(stderr, "iocpgen: lock order violation: %s %s at %s:%d", what, kLockRankNames[int(r)], file, line);
  if (other) std::fprintf(stderr, " while holding %s (taken at %s:%d)", kLockRankNames[int(other->rank)], other->file, other->line);
  std::fprintf(stderr, "\n  declared order: native-template/locks.yaml (lock_ranks.h)\n");
  std::abort();
}
// Every lock held must be one the declared order allows under r (kMayHold).
inline void on_lock(LockRank r, const char* file, int line) {
  Held& h = held();
  for (int i = 0; i < h.n; ++i) {
    if (!((kMayHold[int(r)] >> int(h.locks[i].rank)) & 1u)) violation("taking", r, file, line, &h.locks[i]);
  }
  if (h.n == 16) violation("too many nested locks taking", r, file, line, nullptr);
  h.locks[h.n++] = HeldLock{r, file, line};
}
inline void on_unlock(LockRank r) {
  Held& h = held();
  // Locks are scoped, so the released one is normally the newest.
  for (int i = h.n - 1; i >= 0; --i) {
    if (h.locks[i].rank == r) {
      for (int j = i; j + 1 < h.n; ++j) h.locks[j] = h.locks[j + 1];
      --h.n;
      return;
    }
  }
  violation("releasing a lock not held:", r, "?", 0, nullptr);
}
// Called before every call into JavaScript: JS may run long and re-enter the core.
inline void assert_no_locks_held(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  Held& h = held();
  if (h.n > 0) {
    std::fprintf(stderr, "iocpgen: calling into JavaScript at %s:%d while holding %s (taken at %s:%d)\n", file, line,
                 kLockRankNames[int(h.locks[h.n - 1].rank)], h.locks[h.n - 1].file, h.locks[h.n - 1].line);
    std::abort();
  }
}
#else
inline void on_lock(LockRank, const char*, int) {}
inline void on_unlock(LockRank) {}
inline void assert_no_locks_held() {}
#endif
}  // namespace lockcheck

// The mutex under RankedMutex. Every connection has two locks, so their size is part of
// each idle connection's cost: a futex word on Linux (4 bytes, std::mutex is 40) and
// an SRW lock on Windows (one pointer).
#if defined(__linux__)
class WordMutex {
 public:
  void lock() {
    uint32_t c = 0;
    if (s_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    // Critical sections here are short: a brief spin often avoids the syscall.
    for (int i = 0; i < 32; ++i) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      c = 0;
      if (s_.load(std::memory_order_relaxed) == 0 &&
          s_.compare_exchange_weak(c, 1, std::memory_order_acquire, std::memory_order_relaxed))
        return;
    }
    // 2: locked, and someone may sleep on it, so unlock must wake.
    while (s_.exchange(2, std::memory_order_acquire) != 0) futex(FUTEX_WAIT_PRIVATE, 2);
  }
  void unlock() {
    if (s_.exchange(0, std::memory_order_release) == 2) futex(FUTEX_WAKE_PRIVATE, 1);
  }

 private:
  void futex(int op, uint32_t val) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&s_), op, val, nullptr, nullptr, 0);
  }
  std::atomic<uint32_t> s_{0};  // 0 free, 1 locked, 2 locked with possible sleepers
};
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex word must be 32 bits");
#elif defined(_WIN32)
class WordMutex {
 public:
  void lock() { AcquireSRWLockExclusive(&l_); }
  void unlock() { ReleaseSRWLockExclusive(&l_); }

 private:
  SRWLOCK l_ = SRWLOCK_INIT;
};
#else
using WordMutex = std::mutex;
#endif

class CAPABILITY("mutex") RankedMutex {
 public:
  explicit RankedMutex(LockRank rank) : rank_(rank) {}
  RankedMutex(const RankedMutex&) = delete;
  RankedMutex& operator=(const RankedMutex&) = delete;

  // The call site is recorded for the violation report (debug builds only use it).
  void lock(const char* file = __builtin_FILE(), int line = __builtin_LINE()) ACQUIRE() {
    lockcheck::on_lock(rank_, file, line);
    m_.lock();
  }
  void unlock() RELEASE() {
    m_.unlock();
    lockcheck::on_unlock(rank_);
  }
  LockRank rank() const { return rank_; }

 private:
  WordMutex m_;
  LockRank rank_;
};

class SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(RankedMutex& m, const char* file = __builtin_FILE(), int line = __builtin_LINE()) ACQUIRE(m) : m_(m) {
    m_.lock(file, line);
  }
  ~LockGuard() RELEASE() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  RankedMutex& m_;
};

}  // namespace iocpgen

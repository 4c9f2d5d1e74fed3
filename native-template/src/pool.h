// Fixed-capacity index-array free-list pool (the design's pool), with
// generation-checked handles so late completions for recycled slots are
// recognised. All storage is reserved in the constructor; acquire/release
// never allocate and never block beyond one short leaf lock. Slots are
// constructed when first handed out (lowest index first), so a pool sized
// for many connections costs memory only for the slots a load has used. The free list is a
// stack: the most recently released slot is handed out first, so a steady load keeps
// reusing the same few slots and the rest lie cold at the bottom, where trim_cold() finds
// them.
#pragma once
#include <atomic>
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "lock.h"
#include "slab.h"

namespace iocpgen {

// index + generation. Odd generation = slot in use; a handle is only valid
// while the slot's generation equals the handle's.
struct Handle {
  uint32_t index = UINT32_MAX;
  uint32_t gen = 0;
  bool valid() const { return index != UINT32_MAX; }
  uint64_t pack() const { return (uint64_t(gen) << 32) | index; }
  static Handle unpack(uint64_t v) { return Handle{uint32_t(v), uint32_t(v >> 32)}; }
  bool operator==(const Handle& o) const { return index == o.index && gen == o.gen; }
  bool operator!=(const Handle& o) const { return !(*this == o); }
};

namespace detail {
template <class T, class = void>
struct has_release_hook : std::false_type {};
template <class T>
struct has_release_hook<T, std::void_t<decltype(std::declval<T&>().on_pool_release())>>
    : std::true_type {};
}  // namespace detail

template <class T>
class Pool {
 public:
  // init(T&, index) runs once per slot, when the slot is first handed out.
  template <class Init>
  Pool(uint32_t capacity, Init init)
      : cap_(capacity), init_(std::move(init)), store_(size_t(capacity) * sizeof(T)), mu_(LockRank::pool) {
    static_assert(alignof(T) <= 4096, "slab pages are page aligned");
    items_ = reinterpret_cast<T*>(store_.data());
    gens_.reset(new std::atomic<uint32_t>[cap_]);
    free_.reset(new uint32_t[cap_]);
    for (uint32_t i = 0; i < cap_; ++i) {
      gens_[i].store(0, std::memory_order_relaxed);
      // Hand out low indices first (stack pops from the top).
      free_[i] = cap_ - 1 - i;
    }
    free_top_ = cap_;
    clean_ = low_ = cap_;
  }
  explicit Pool(uint32_t capacity) : Pool(capacity, [](T&, uint32_t) {}) {}
  ~Pool() {
    const uint32_t n = built_.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) items_[i].~T();
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Invalid handle when empty; never waits for a slot.
  Handle acquire() {
    LockGuard g(mu_);
    if (free_top_ == 0) {
      ++failed_;
      return Handle{};
    }
    uint32_t i = free_[--free_top_];
    if (low_ > free_top_) low_ = free_top_;
    if (clean_ > free_top_) clean_ = free_top_;
    build_through(i);
    uint32_t gen = gens_[i].load(std::memory_order_relaxed) + 1;
    gens_[i].store(gen, std::memory_order_release);
    uint32_t used = cap_ - free_top_;
    if (used > high_water_) high_water_ = used;
    return Handle{i, gen};
  }

  // Returns false (and asserts in debug builds) for a stale or free handle.
  bool release(Handle h) {
    bool ok = try_release(h);
    assert(ok && "pool: release of stale or free handle");
    return ok;
  }

  // Non-asserting release, for tests and defensive paths.
  bool try_release(Handle h) {
    if (h.index >= cap_ || (h.gen & 1u) == 0) return false;
    {
      LockGuard g(mu_);
      if (gens_[h.index].load(std::memory_order_relaxed) != h.gen) return false;
      // Mark free now so a second release of h fails even before the push.
      gens_[h.index].store(h.gen + 1, std::memory_order_release);
    }
    run_hook(items_[h.index]);
    LockGuard g(mu_);
    free_[free_top_++] = h.index;
    return true;
  }

  // Null when the handle is stale. The slot memory itself lives as long as
  // the pool, so callers that must act on it re-check under their own lock.
  T* get(Handle h) {
    if (h.index >= built_.load(std::memory_order_acquire)) return nullptr;
    if (gens_[h.index].load(std::memory_order_acquire) != h.gen || (h.gen & 1u) == 0) return nullptr;
    return &items_[h.index];
  }
  // Null for a slot never handed out (nothing there yet).
  T* slot(uint32_t index) { return index < built_.load(std::memory_order_acquire) ? &items_[index] : nullptr; }
  Handle current(uint32_t index) const {
    uint32_t g = gens_[index].load(std::memory_order_acquire);
    return (g & 1u) ? Handle{index, g} : Handle{};
  }

  uint32_t capacity() const { return cap_; }
  uint32_t in_use() {
    LockGuard g(mu_);
    return cap_ - free_top_;
  }
  uint32_t free_count() {
    LockGuard g(mu_);
    return free_top_;
  }
  uint32_t high_water() {
    LockGuard g(mu_);
    return high_water_;
  }
  uint64_t failed_acquires() {
    LockGuard g(mu_);
    return failed_;
  }

  // For slots free since the previous call, not yet discarded: discard(first, count) runs
  // for each run of consecutive indices, under the pool's lock so none of them can be
  // handed out meanwhile. Called periodically, so "free since the previous call" means
  // unused for at least one period. Works in batches, letting acquirers in between.
  //
  // Stack positions below low_ have not been popped since the last call: their slots stayed
  // free. Positions below clean_ are discarded already (or were never used) and stay so
  // while the stack does not shrink below them.
  template <class Discard>
  void trim_cold(Discard discard) {
    constexpr uint32_t kBatch = 64;
    uint32_t idx[kBatch];
    for (;;) {
      LockGuard g(mu_);
      if (clean_ >= low_) {
        low_ = free_top_;  // the next period starts
        return;
      }
      const uint32_t n = low_ - clean_ < kBatch ? low_ - clean_ : kBatch;
      for (uint32_t k = 0; k < n; ++k) idx[k] = free_[clean_ + k];
      std::sort(idx, idx + n);
      for (uint32_t k = 0; k < n;) {
        uint32_t run = 1;
        while (k + run < n && idx[k + run] == idx[k] + run) ++run;
        discard(idx[k], run);
        k += run;
      }
      clean_ += n;
    }
  }

 private:
  static void run_hook(T& t) {
    if constexpr (detail::has_release_hook<T>::value) t.on_pool_release();
  }

  // Constructs every slot up to index i (the free stack hands out fresh slots in order).
  void build_through(uint32_t i) REQUIRES(mu_) {
    uint32_t n = built_.load(std::memory_order_relaxed);
    for (; n <= i; ++n) {
      T* t = new (&items_[n]) T();
      init_(*t, n);
    }
    built_.store(n, std::memory_order_release);
  }

  const uint32_t cap_;
  std::function<void(T&, uint32_t)> init_;
  BufferSlab store_;  // untouched pages until a slot is built
  T* items_ = nullptr;
  std::atomic<uint32_t> built_{0};
  std::unique_ptr<std::atomic<uint32_t>[]> gens_;
  std::unique_ptr<uint32_t[]> free_;
  RankedMutex mu_;
  uint32_t free_top_ GUARDED_BY(mu_) = 0;
  uint32_t low_ GUARDED_BY(mu_) = 0;    // lowest free_top_ since the last trim_cold()
  uint32_t clean_ GUARDED_BY(mu_) = 0;  // free_[0, clean_): discarded or never used
  uint32_t high_water_ GUARDED_BY(mu_) = 0;
  uint64_t failed_ GUARDED_BY(mu_) = 0;
};

}  // namespace iocpgen

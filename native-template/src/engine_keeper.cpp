// The engine's housekeeping thread, the keeper. It admits queued logins in order as
// per-socket contexts come free and tells the waiting clients their position; it closes
// idle connections, resets graceful closes that outlive their deadline, and forgets
// addresses that no longer need tracking, and hands long-unused buffer pages back to the OS. Timestamps come from the engine's clock, not
// from the keeper, so a keeper that runs late only closes late, never early.
#include <algorithm>
#include <vector>

#include "engine.h"

namespace iocpgen {

namespace {

constexpr uint64_t kTickMs = 50;         // the finest timeout granularity
constexpr uint64_t kTellEveryMs = 250;   // queue positions are re-sent at most this often
constexpr uint64_t kSweepEveryMs = 1000;

// A frame of the spec's queue-notice message: a u32 position.
void notice(uint8_t out[10], uint16_t type, uint32_t position) {
  const uint32_t len = 2 + 4;
  for (int i = 0; i < 4; ++i) out[i] = uint8_t(len >> (8 * i));
  out[4] = uint8_t(type);
  out[5] = uint8_t(type >> 8);
  for (int i = 0; i < 4; ++i) out[6 + i] = uint8_t(position >> (8 * i));
}

}  // namespace

void Engine::wake_keeper() {
  {
    LockGuard k(keeper_mu_);
    keeper_poke_ = true;
  }
  keeper_cv_.notify_one();
}

// Takes the socket into the queue (false: full, or shutting down). The client hears its
// position at once; the socket is written to only under the keeper lock from now on.
bool Engine::enqueue_login(Accepted& a) {
  {
    LockGuard k(keeper_mu_);
    if (keeper_quit_ || !accepting_.load() || queue_.size() >= cfg_.login_queue) return false;
    net::set_nonblocking(a.sock, true);
    const uint32_t pos = uint32_t(queue_.size()) + 1;
    a.told = pos;
    if (cfg_.queue_notice_type) {
      uint8_t f[10];
      notice(f, cfg_.queue_notice_type, pos);
      net::send_now(a.sock, f, sizeof f);  // a fresh socket has room; a failure shows as peer_gone
    }
    queue_.push_back(a);
    queue_len_.store(uint32_t(queue_.size()));
    ++queued_total_;
    queue_high_water_ = std::max(queue_high_water_, uint32_t(queue_.size()));
    keeper_poke_ = true;  // a context may have come free meanwhile
  }
  keeper_cv_.notify_one();
  a.sock = kInvalidSocket;
  return true;
}

void Engine::keeper_main() {
  uint64_t last_tell = 0, last_sweep = 0, last_scan = 0, last_trim = 0;
  // Idle connections and stalled frames are looked for a few times per timeout, at
  // least once a second.
  uint64_t scan_every = 0;
  for (uint64_t t : {uint64_t(cfg_.idle_timeout_ms), uint64_t(cfg_.frame_timeout_ms)}) {
    if (!t) continue;
    const uint64_t every = std::clamp<uint64_t>(t / 8, kTickMs, 1000);
    scan_every = scan_every ? std::min(scan_every, every) : every;
  }
  for (;;) {
    {
      LockGuard k(keeper_mu_);
      if (!keeper_quit_ && !keeper_poke_) keeper_cv_.wait_for(keeper_mu_, std::chrono::milliseconds(kTickMs));
      if (keeper_quit_) return;
      keeper_poke_ = false;
    }
    const uint64_t now = clock_ms();
    admit_queued();
    if (queue_len_.load() > 0 && now - last_tell >= kTellEveryMs) {
      tell_positions();
      last_tell = now;
    }
    if (draining_.load() > 0 || (scan_every && now - last_scan >= scan_every)) {
      enforce_timeouts(uint32_t(now));
      last_scan = now;
    }
    if (cfg_.buffer_trim_ms && now - last_trim >= cfg_.buffer_trim_ms) {
      trim_buffers();
      last_trim = now;
    }
    if (admission_.enabled() && now - last_sweep >= kSweepEveryMs) {
      admission_.sweep(now);
      last_sweep = now;
    }
  }
}

// Oldest first, while contexts are free. New accepts queue behind the waiting ones, so a
// free context is never taken out of turn.
void Engine::admit_queued() {
  while (accepting_.load() && queue_len_.load() > 0) {
    const Handle h = sockets_->acquire();
    if (!h.valid()) return;
    Accepted a;
    bool got = false;
    {
      LockGuard k(keeper_mu_);
      if (!queue_.empty()) {
        a = queue_.front();
        queue_.pop_front();
        queue_len_.store(uint32_t(queue_.size()));
        ++queue_admitted_;
        positions_stale_ = true;
        got = true;
      }
    }
    if (!got) {
      sockets_->release(h);
      return;
    }
    net::set_nonblocking(a.sock, false);
    setup_connection(a, h, true);
  }
}

// Re-sends positions that changed, and drops clients that gave up waiting.
void Engine::tell_positions() {
  std::vector<Accepted> gone;
  {
    LockGuard k(keeper_mu_);
    const bool stale = positions_stale_;
    positions_stale_ = false;
    uint32_t pos = 0;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (net::peer_gone(it->sock)) {
        gone.push_back(*it);
        it = queue_.erase(it);
        ++queue_abandoned_;
        continue;
      }
      ++pos;
      if (stale && cfg_.queue_notice_type && it->told != pos) {
        uint8_t f[10];
        notice(f, cfg_.queue_notice_type, pos);
        if (net::send_now(it->sock, f, sizeof f)) it->told = pos;
      }
      ++it;
    }
    if (!gone.empty()) positions_stale_ = true;
    queue_len_.store(uint32_t(queue_.size()));
  }
  for (Accepted& a : gone) {
    if (a.ip_counted) forget_ip(a.ip);
    net::close_socket(a.sock);
  }
}

// Shutdown: the queued clients get a plain close (FIN); they were never connections.
void Engine::refuse_queued() {
  std::deque<Accepted> all;
  {
    LockGuard k(keeper_mu_);
    all.swap(queue_);
    queue_len_.store(0);
  }
  for (Accepted& a : all) {
    if (a.ip_counted) forget_ip(a.ip);
    net::close_socket(a.sock);
  }
}

// Stamps are ticks (mod 2^32); a worker may stamp a tick later than now, which the signed
// difference reads as negative, never as a long time ago.
void Engine::enforce_timeouts(uint32_t now) {
  const int32_t idle = int32_t(cfg_.idle_timeout_ms);
  const int32_t frame = int32_t(cfg_.frame_timeout_ms);
  const int32_t drain = int32_t(cfg_.drain_timeout_ms);
  auto since = [now](uint32_t t) { return int32_t(now - t); };
  for (uint32_t i = 0; i < sockets_->capacity(); ++i) {
    const Handle h = sockets_->current(i);
    if (!h.valid()) continue;
    SocketContext* sc = sockets_->slot(i);
    if (!sc) continue;
    const ConnState st = sc->state.load();
    const uint32_t started = frame && st == ConnState::open ? sc->frame_start_tick.load(std::memory_order_relaxed) : 0;
    if (started && since(started) > frame) {
      // A trickle keeps the idle timer fresh; a frame begun this long ago is an attack
      // or a dead link: reset it, so it costs nothing more.
      close_sc(sc, h, CloseReason::frame_timeout);
    } else if (st == ConnState::open && idle && since(sc->last_rx_tick.load(std::memory_order_relaxed)) > idle) {
      close_sc(sc, h, CloseReason::idle_timeout);
    } else if (st == ConnState::draining && since(sc->drain_start_tick.load(std::memory_order_relaxed)) > drain) {
      // The peer has not taken what was sent, or not closed its side: reset it.
      if (close_sc(sc, h, CloseReason::slow_consumer)) drain_timeouts_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

}  // namespace iocpgen

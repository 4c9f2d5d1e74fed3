// Per-address flood limits, checked when a connection is accepted and before a
// per-socket context is spent on it: most connections from one address, most new
// connections per second, and a temporary ban for an address that breaks either.
#pragma once
#include <cstdint>
#include <cstring>
#include <random>
#include <unordered_map>

#include "lock.h"
#include "net.h"

namespace iocpgen {

// An IPv4 or IPv6 address as 16 bytes (IPv4 in its IPv6-mapped form).
struct IpKey {
  uint8_t b[16] = {0};

  static IpKey of(const void* sockaddr_ptr) {
    IpKey k;
    const sockaddr* a = static_cast<const sockaddr*>(sockaddr_ptr);
    if (a->sa_family == AF_INET) {
      const sockaddr_in* v4 = static_cast<const sockaddr_in*>(sockaddr_ptr);
      k.b[10] = k.b[11] = 0xff;
      std::memcpy(k.b + 12, &v4->sin_addr, 4);
    } else if (a->sa_family == AF_INET6) {
      std::memcpy(k.b, &static_cast<const sockaddr_in6*>(sockaddr_ptr)->sin6_addr, 16);
    }
    return k;
  }
  bool operator==(const IpKey& o) const { return std::memcmp(b, o.b, 16) == 0; }
};

enum class Verdict : uint8_t { admit, banned, per_ip_limit, connect_rate, table_full };

struct AdmissionConfig {
  uint32_t max_connections = 0;  // per address; 0: unlimited
  uint32_t connects_per_sec = 0;  // per address; 0: unlimited
  uint32_t ban_ms = 60000;
  size_t max_tracked = 65536;     // addresses remembered at once
};

class Admission {
 public:
  explicit Admission(const AdmissionConfig& cfg) : cfg_(cfg), map_(64, Hash{std::random_device{}()}) {}

  bool enabled() const { return cfg_.max_connections > 0 || cfg_.connects_per_sec > 0; }

  // admit: the address's connection count went up by one; release() it later.
  Verdict admit(const IpKey& ip, uint64_t now_ms) {
    LockGuard g(mu_);
    auto it = map_.find(ip);
    if (it == map_.end()) {
      if (map_.size() >= cfg_.max_tracked) sweep_locked(now_ms);
      if (map_.size() >= cfg_.max_tracked) return Verdict::table_full;
      it = map_.emplace(ip, Entry{}).first;
      it->second.tokens = double(cfg_.connects_per_sec);
      it->second.refilled_ms = now_ms;
    }
    Entry& e = it->second;
    if (e.banned_until_ms > now_ms) {
      ++refused_while_banned_;
      return Verdict::banned;
    }
    if (cfg_.connects_per_sec > 0) {
      // Token bucket: a second's worth of connects may come at once, then `rate` per second.
      const double rate = cfg_.connects_per_sec;
      e.tokens += double(now_ms - e.refilled_ms) * rate / 1000.0;
      if (e.tokens > rate) e.tokens = rate;
      e.refilled_ms = now_ms;
      if (e.tokens < 1.0) return ban(e, now_ms, Verdict::connect_rate);
      e.tokens -= 1.0;
    }
    if (cfg_.max_connections > 0 && e.connections >= cfg_.max_connections) return ban(e, now_ms, Verdict::per_ip_limit);
    ++e.connections;
    return Verdict::admit;
  }

  void release(const IpKey& ip) {
    LockGuard g(mu_);
    auto it = map_.find(ip);
    if (it != map_.end() && it->second.connections > 0) --it->second.connections;
  }

  // Forgets addresses with no connection, no ban and a full bucket.
  void sweep(uint64_t now_ms) {
    LockGuard g(mu_);
    sweep_locked(now_ms);
  }

  struct Counts {
    uint64_t tracked = 0, banned_now = 0, bans_total = 0, refused_while_banned = 0;
  };
  Counts counts(uint64_t now_ms) {
    LockGuard g(mu_);
    Counts c;
    c.tracked = map_.size();
    for (auto& kv : map_) c.banned_now += kv.second.banned_until_ms > now_ms;
    c.bans_total = bans_total_;
    c.refused_while_banned = refused_while_banned_;
    return c;
  }

 private:
  struct Entry {
    uint32_t connections = 0;
    double tokens = 0;
    uint64_t refilled_ms = 0;
    uint64_t banned_until_ms = 0;
  };
  // Seeded per process so nobody can choose addresses that collide.
  struct Hash {
    uint64_t seed;
    size_t operator()(const IpKey& k) const {
      uint64_t h = seed ^ 0x9e3779b97f4a7c15ull;
      for (int i = 0; i < 16; i += 8) {
        uint64_t w;
        std::memcpy(&w, k.b + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 33;
      }
      return size_t(h);
    }
  };

  Verdict ban(Entry& e, uint64_t now_ms, Verdict why) REQUIRES(mu_) {
    e.banned_until_ms = now_ms + cfg_.ban_ms;
    e.tokens = double(cfg_.connects_per_sec);  // a fresh bucket when the ban ends
    ++bans_total_;
    return why;
  }

  void sweep_locked(uint64_t now_ms) REQUIRES(mu_) {
    const double full = double(cfg_.connects_per_sec);
    for (auto it = map_.begin(); it != map_.end();) {
      const Entry& e = it->second;
      const double tokens = e.tokens + double(now_ms - e.refilled_ms) * full / 1000.0;
      if (e.connections == 0 && e.banned_until_ms <= now_ms && tokens >= full) it = map_.erase(it);
      else ++it;
    }
  }

  const AdmissionConfig cfg_;
  RankedMutex mu_{LockRank::admission};
  std::unordered_map<IpKey, Entry, Hash> map_ GUARDED_BY(mu_);
  uint64_t bans_total_ GUARDED_BY(mu_) = 0;
  uint64_t refused_while_banned_ GUARDED_BY(mu_) = 0;
};

}  // namespace iocpgen

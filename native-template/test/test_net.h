// Small blocking-socket client layer for the core tests (POSIX + Winsock).
#pragma once
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET tsock_t;
static const tsock_t kBadSock = INVALID_SOCKET;
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int tsock_t;
static const tsock_t kBadSock = -1;
#endif

namespace tnet {

// A timed-out blocking call returns EINTR instead of restarting when a signal
// or task_work (io_uring teardown in this process) interrupts it.
inline std::atomic<int>& eintr_count() {
  static std::atomic<int> n{0};
  return n;
}
inline bool interrupted() {
#ifdef _WIN32
  bool r = WSAGetLastError() == WSAEINTR;
#else
  bool r = errno == EINTR;
#endif
  if (r) eintr_count().fetch_add(1);
  return r;
}

inline void init() {
#ifdef _WIN32
  WSADATA d;
  WSAStartup(MAKEWORD(2, 2), &d);
#else
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
#endif
}

inline void close_sock(tsock_t s) {
#ifdef _WIN32
  closesocket(s);
#else
  ::close(s);
#endif
}

inline void set_timeouts(tsock_t s, int ms) {
#ifdef _WIN32
  DWORD t = DWORD(ms);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&t), sizeof t);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, reinterpret_cast<const char*>(&t), sizeof t);
#else
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
#endif
}

class Client {
 public:
  Client() = default;
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&& o) noexcept : s_(o.s_) { o.s_ = kBadSock; }
  Client& operator=(Client&& o) noexcept {
    if (this != &o) { close(); s_ = o.s_; o.s_ = kBadSock; }
    return *this;
  }

  // from: a source address such as "127.0.0.2" (per-address limits); null: any.
  bool connect(uint16_t port, int timeout_ms = 5000, int rcvbuf = 0, const char* from = nullptr) {
    close();
    s_ = ::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s_ == kBadSock) return false;
    if (from) {
      sockaddr_in l{};
      l.sin_family = AF_INET;
      inet_pton(AF_INET, from, &l.sin_addr);
      if (::bind(s_, reinterpret_cast<sockaddr*>(&l), sizeof l) != 0) {
        close();
        return false;
      }
    }
    if (rcvbuf > 0)
      setsockopt(s_, SOL_SOCKET, SO_RCVBUF, reinterpret_cast<const char*>(&rcvbuf), sizeof rcvbuf);
    int one = 1;
    setsockopt(s_, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
    set_timeouts(s_, timeout_ms);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = ::connect(s_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (rc != 0 && interrupted()) {
      // The handshake continues in the background; wait for it.
      fd_set w;
      FD_ZERO(&w);
      FD_SET(s_, &w);
      timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
      int err = 0;
      socklen_t el = sizeof err;
      if (select(int(s_ + 1), nullptr, &w, nullptr, &tv) == 1 &&
          getsockopt(s_, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&err), &el) == 0 && err == 0)
        rc = 0;
    }
    if (rc != 0) {
      close();
      return false;
    }
    return true;
  }
  bool send_all(const void* data, size_t len) {
    const char* p = static_cast<const char*>(data);
    while (len) {
      int n = ::send(s_, p, int(len > 65536 ? 65536 : len), 0);
      if (n < 0 && interrupted()) continue;
      if (n <= 0) return false;
      p += n;
      len -= size_t(n);
    }
    return true;
  }
  bool send_all(const std::vector<uint8_t>& v) { return send_all(v.data(), v.size()); }
  // Exactly len bytes, or false on EOF/error/timeout.
  bool recv_exact(void* data, size_t len) {
    char* p = static_cast<char*>(data);
    while (len) {
      int n = ::recv(s_, p, int(len), 0);
      if (n < 0 && interrupted()) continue;
      if (n <= 0) return false;
      p += n;
      len -= size_t(n);
    }
    return true;
  }
  // true if the peer closed (EOF or reset) within the socket timeout.
  bool wait_closed() {
    char buf[4096];
    for (;;) {
      int n = ::recv(s_, buf, sizeof buf, 0);
      if (n < 0 && interrupted()) continue;
      if (n == 0) return true;
      if (n < 0) {
#ifdef _WIN32
        int e = WSAGetLastError();
        return e != WSAETIMEDOUT && e != WSAEWOULDBLOCK;
#else
        return errno != EAGAIN && errno != EWOULDBLOCK;
#endif
      }
    }
  }
  // Reads until the peer's FIN (true) or a reset/timeout (false); *bytes counts what came.
  bool read_to_eof(uint64_t* bytes) {
    std::vector<char> buf(65536);
    for (;;) {
      int n = ::recv(s_, buf.data(), int(buf.size()), 0);
      if (n < 0 && interrupted()) continue;
      if (n == 0) return true;
      if (n < 0) return false;
      *bytes += uint64_t(n);
    }
  }
  // One send / receive. Returns the byte count, 0 for the peer's FIN (receive), or -1 with
  // the socket error in *err.
  int send_some(const void* data, size_t len, int* err) {
    for (;;) {
#ifdef _WIN32
      int n = ::send(s_, static_cast<const char*>(data), int(len), 0);
#else
      int n = int(::send(s_, data, len, MSG_NOSIGNAL));
#endif
      if (n < 0 && interrupted()) continue;
      if (n < 0) *err = last_error();
      return n;
    }
  }
  int recv_some(void* data, size_t len, int* err) {
    for (;;) {
      int n = ::recv(s_, static_cast<char*>(data), int(len), 0);
      if (n < 0 && interrupted()) continue;
      if (n < 0) *err = last_error();
      return n;
    }
  }
  static int last_error() {
#ifdef _WIN32
    return WSAGetLastError();
#else
    return errno;
#endif
  }
  static bool is_reset(int e) {
#ifdef _WIN32
    return e == WSAECONNRESET || e == WSAECONNABORTED;
#else
    return e == ECONNRESET;
#endif
  }
  // RST instead of FIN.
  void abort() {
    if (s_ == kBadSock) return;
    linger lg;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(s_, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&lg), sizeof lg);
    close();
  }
  void close() {
    if (s_ != kBadSock) close_sock(s_);
    s_ = kBadSock;
  }
  bool ok() const { return s_ != kBadSock; }

 private:
  tsock_t s_ = kBadSock;
};

inline bool wait_until(const std::function<bool()>& pred, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace tnet

// Portability header: socket types, close/shutdown, error codes.
// Everything platform specific outside the backends lives here.
#pragma once
#include <cstdint>
#include <string>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace iocpgen {

#ifdef _WIN32
using socket_t = SOCKET;
constexpr socket_t kInvalidSocket = INVALID_SOCKET;
#else
using socket_t = int;
constexpr socket_t kInvalidSocket = -1;
#endif

namespace net {

inline void close_socket(socket_t s) {
#ifdef _WIN32
  ::closesocket(s);
#else
  ::close(s);
#endif
}

// Wakes any blocked/posted op on the socket; used by the close path.
inline void shutdown_both(socket_t s) {
#ifdef _WIN32
  ::shutdown(s, SD_BOTH);
#else
  ::shutdown(s, SHUT_RDWR);
#endif
}

// Half-close: our FIN goes out after the bytes already sent; receiving goes on.
inline void shutdown_send(socket_t s) {
#ifdef _WIN32
  ::shutdown(s, SD_SEND);
#else
  ::shutdown(s, SHUT_WR);
#endif
}

// Non-blocking mode for sockets the engine writes to directly (the login queue's
// notices); the backends' own I/O does not depend on it.
inline void set_nonblocking(socket_t s, bool on) {
#ifdef _WIN32
  u_long v = on ? 1 : 0;
  ::ioctlsocket(s, FIONBIO, &v);
#else
  (void)s;
  (void)on;  // MSG_DONTWAIT per call instead
#endif
}

// Writes all of a small message now or not at all (false: full or broken).
inline bool send_now(socket_t s, const void* data, int len) {
#ifdef _WIN32
  return ::send(s, static_cast<const char*>(data), len, 0) == len;
#else
  return ::send(s, data, size_t(len), MSG_DONTWAIT | MSG_NOSIGNAL) == len;
#endif
}

// True when the peer has closed or reset (it may have sent data first: that is kept).
inline bool peer_gone(socket_t s) {
  char c;
#ifdef _WIN32
  const int n = ::recv(s, &c, 1, MSG_PEEK);
  return n == 0 || (n < 0 && WSAGetLastError() != WSAEWOULDBLOCK);
#else
  const ssize_t n = ::recv(s, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
#endif
}

// Abortive close (RST) so a slow or bad client does not linger in TIME_WAIT.
inline void set_linger_zero(socket_t s) {
  struct linger lg;
  lg.l_onoff = 1;
  lg.l_linger = 0;
  ::setsockopt(s, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&lg), sizeof lg);
}

// Condemns a connection: RST now, and the peer's later bytes are refused by the stack
// rather than read. POSIX: with linger 0, connect(AF_UNSPEC) disconnects the socket in
// place (the descriptor stays valid for the posted ops, which fail at once; close later
// sends nothing more). No FIN goes out first, unlike shutdown. Windows: closesocket with
// linger 0 sends the RST when the last op has been cancelled; nothing to do here.
// false: the stack refused, the caller falls back to shutdown.
inline bool reset_now(socket_t s) {
  set_linger_zero(s);
#ifdef _WIN32
  (void)s;
  return true;
#else
  sockaddr sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_family = AF_UNSPEC;
  return ::connect(s, &sa, sizeof sa) == 0;
#endif
}

inline int last_error() {
#ifdef _WIN32
  return WSAGetLastError();
#else
  return errno;
#endif
}

// Formats a sockaddr into text + port; returns false for unknown families.
inline bool format_peer(const void* sa, char* text, size_t text_len, uint16_t* port) {
  const sockaddr* a = static_cast<const sockaddr*>(sa);
  if (a->sa_family == AF_INET) {
    const sockaddr_in* v4 = static_cast<const sockaddr_in*>(sa);
    *port = ntohs(v4->sin_port);
    return inet_ntop(AF_INET, const_cast<in_addr*>(&v4->sin_addr), text, (socklen_t)text_len) != nullptr;
  }
  if (a->sa_family == AF_INET6) {
    const sockaddr_in6* v6 = static_cast<const sockaddr_in6*>(sa);
    *port = ntohs(v6->sin6_port);
    return inet_ntop(AF_INET6, const_cast<in6_addr*>(&v6->sin6_addr), text, (socklen_t)text_len) != nullptr;
  }
  if (text_len) text[0] = 0;
  *port = 0;
  return false;
}

#ifndef _WIN32
// The listening socket of the POSIX backends: bound, listening, its port in *bound.
// -1 with the reason in *why on failure.
inline int make_listener(const std::string& host, uint16_t port, int backlog, bool nonblocking, bool reuse_port,
                         uint16_t* bound, std::string* why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
  addrinfo* res = nullptr;
  char portbuf[8];
  snprintf(portbuf, sizeof portbuf, "%u", unsigned(port));
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), portbuf, &hints, &res);
  if (rc != 0) {
    if (why) *why = std::string("getaddrinfo: ") + gai_strerror(rc);
    return -1;
  }
  const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd >= 0 && reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    if (why) *why = std::string("setsockopt SO_REUSEPORT: ") + strerror(errno);
    ::close(fd);
    freeaddrinfo(res);
    return -1;
  }
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
    if (why) *why = std::string("socket/bind/listen: ") + strerror(errno);
    if (fd >= 0) ::close(fd);
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
  char text[64];
  format_peer(&ss, text, sizeof text, bound);
  return fd;
}
#endif

}  // namespace net
}  // namespace iocpgen

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
#include <cerrno>
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

// Abortive close (RST) so a slow or bad client does not linger in TIME_WAIT.
inline void set_linger_zero(socket_t s) {
  struct linger lg;
  lg.l_onoff = 1;
  lg.l_linger = 0;
  ::setsockopt(s, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&lg), sizeof lg);
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

}  // namespace net
}  // namespace iocpgen

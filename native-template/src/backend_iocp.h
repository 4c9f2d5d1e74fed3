// Extras of the IOCP backend beyond the Port interface: what tests need to see.
#pragma once
#include <cstdint>

#include "port.h"

namespace iocpgen {

#ifdef _WIN32
// Socket reuse as the backend saw it: sockets taken into the spare list by
// reuse_socket(), and sockets taken out of it for an AcceptEx.
struct IocpReuseTrace {
  uint64_t given_back = 0;
  socket_t last_given_back = kInvalidSocket;
  uint64_t reaccepts = 0;
  socket_t last_reaccepted = kInvalidSocket;
};
// Zeroes when port is not the IOCP backend.
IocpReuseTrace iocp_reuse_trace(Port* port);
#endif

}  // namespace iocpgen

// Extras of the IOCP backend that are not (yet) part of the Port interface.
#pragma once
#include "port.h"

namespace iocpgen {

#ifdef _WIN32
// Gives a socket whose post_disconnect completed with 0 back to the IOCP
// backend, which uses it for a later AcceptEx instead of creating a new one
// (the design's socket reuse). Returns false when the port is not the IOCP
// backend, reuse is off or unsupported (see supports_socket_reuse()), or the
// spare pool is full: the caller then still owns s and must close it.
bool iocp_recycle_socket(Port* port, socket_t s);
#endif

}  // namespace iocpgen

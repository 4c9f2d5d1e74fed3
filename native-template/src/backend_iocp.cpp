// Windows I/O completion port backend.
//
// Shape (after the design): one completion port shared by all workers; each
// accepted socket is associated with it using its SocketContext as the
// completion key; every posted operation carries its IoContext, whose first
// member is the OVERLAPPED. Accepts are AcceptEx calls kept pre-posted on the
// listening socket (accept_backlog of them, the design used 10-15). Receives
// and sends are WSARecv / WSASend. Workers dequeue in batches with
// GetQueuedCompletionStatusEx and are woken (also for shutdown) with
// PostQueuedCompletionStatus.
//
// Exactly-once rule (port.h): every post_* that returns true produces exactly
// one Completion. The kernel queues a packet for an overlapped call that
// returns pending, and also for one that succeeds at once unless the socket
// is in FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode. It queues nothing for a
// call that fails at once. Whenever the kernel will not queue a packet, the
// backend delivers the result itself ("synthetic" completion):
//   * on a worker thread of this port: onto that thread's private ready list,
//     which its next dequeue() returns without a system call (this is what
//     makes skip-on-success worth having);
//   * on any other thread: PostQueuedCompletionStatus with kSyntheticKey and
//     the IoContext's OVERLAPPED, the result parked in IoContext::result.
//
// The completion key of socket packets is never trusted: a socket recycled
// through DisconnectEx(TF_REUSE_SOCKET) keeps the key of its first owner,
// so everything is derived from the IoContext (IoContext::backend holds the
// SocketContext of the op).
//
// Wine notes (wine 8.0, see win/README.md): DisconnectEx ignores
// TF_REUSE_SOCKET, and a socket re-used by AcceptEx afterwards never sees its
// pending receives complete. Reuse is therefore probed at run time on a
// private loopback pair and turned off (logged once) when the probe fails.
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend_iocp.h"
#include "port.h"

namespace iocpgen {
namespace {

// Completion keys. Socket packets carry a SocketContext* (never 0..3).
constexpr ULONG_PTR kWakeKey = 1;       // wake(): OVERLAPPED is null
constexpr ULONG_PTR kSyntheticKey = 2;  // result already in IoContext::result
constexpr ULONG_PTR kListenKey = 3;     // AcceptEx packets

// AcceptEx needs room for two addresses, each 16 bytes more than the largest
// sockaddr of the family. The context's address area holds both.
constexpr DWORD kAcceptAddrLen = sizeof(sockaddr_in6) + 16;
static_assert(2 * kAcceptAddrLen <= IoContext::kAddrRoom, "address area too small for AcceptEx");

// Marker bit in IoContext::backend: this receive uses a zero-byte read
// followed by a non-blocking read.
constexpr uintptr_t kZeroPhase = 1;

constexpr DWORD kStatusSuccess = 0x00000000;  // NTSTATUS in OVERLAPPED::Internal
constexpr DWORD kErrorHandlesClosed = 676;    // ERROR_HANDLES_CLOSED (not in every mingw)

typedef ULONG(WINAPI* RtlNtStatusToDosErrorFn)(LONG);

// Win32 / Winsock error -> port.h result code.
int64_t map_error(DWORD e) {
  switch (e) {
    case ERROR_NETNAME_DELETED:      // 64: the design's abrupt-disconnect code
    case WSAECONNRESET:
    case WSAENETRESET:
    case ERROR_UNEXP_NET_ERR:
      return kIoReset;
    case ERROR_CONNECTION_ABORTED:
    case WSAECONNABORTED:
    case ERROR_REQUEST_ABORTED:
      return kIoConnAborted;
    case ERROR_OPERATION_ABORTED:    // 995 (= WSA_OPERATION_ABORTED): cancelled / closed
    case kErrorHandlesClosed:        // wine: pending op on a closed socket
    case WSAEINTR:
      return kIoCanceled;
    case WSAESHUTDOWN:
    case WSAENOTCONN:
    case ERROR_PIPE_NOT_CONNECTED:   // wine: send after shutdown
    case ERROR_GRACEFUL_DISCONNECT:
      return kIoPipe;
    case WSAENOBUFS:
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_NO_SYSTEM_RESOURCES:
    case ERROR_INSUFFICIENT_BUFFER:
      return kIoNoBuffers;
    case WSAETIMEDOUT:
    case ERROR_SEM_TIMEOUT:
    case WAIT_TIMEOUT:
      return kIoTimedOut;
    default:
      return kIoFailed;
  }
}

// Each worker thread's private list of results that finished inline.
// Ports are told apart by a process-unique id, not their address, so a new
// port allocated where an old one lived never inherits its list.
struct LocalReady {
  uint64_t owner = 0;         // id of the IocpPort this thread dequeues from
  HANDLE owner_port = nullptr;
  IoQueue q;
};
thread_local LocalReady tl_ready;
std::atomic<uint64_t> g_next_port_id{1};

bool env_flag(const char* name, bool dflt) {
  const char* v = std::getenv(name);
  if (!v || !*v) return dflt;
  return !(v[0] == '0' || v[0] == 'n' || v[0] == 'N' || v[0] == 'f' || v[0] == 'F');
}

}  // namespace

namespace iocp {

class IocpPort final : public Port {
 public:
  IocpPort() = default;
  ~IocpPort() override;

  const char* name() const override { return "iocp"; }
  bool open(const EngineConfig& cfg, std::string* why) override;
  bool listen(const std::string& host, uint16_t port, int backlog, bool reuse_port, uint16_t* bound_port,
              std::string* why) override;
  bool associate(SocketContext* sc) override;
  bool post_accept(IoContext* io) override;
  bool post_recv(SocketContext* sc, IoContext* io) override;
  bool post_send(SocketContext* sc, IoContext* io) override;
  bool post_disconnect(SocketContext* sc, IoContext* io) override;
  bool supports_socket_reuse() const override { return reuse_; }
  bool socket_reuse_requested() const override { return cfg_.socket_reuse; }
  // A socket whose DisconnectEx(TF_REUSE_SOCKET) completed with success goes to the
  // spare list; the next AcceptEx uses it instead of a new socket. false (caller closes
  // it): reuse is off or does not work here, or the list is full.
  bool reuse_socket(socket_t s) override;
  void cancel(SocketContext* sc) override;
  void cancel_accepts() override;
  size_t dequeue(int worker, Completion* out, size_t max, int timeout_ms) override;
  void wake(int worker) override;

  IocpReuseTrace trace() {
    LockGuard g(accept_mu_);
    return trace_;
  }

 private:
  static SocketContext* sc_of(IoContext* io) {
    return reinterpret_cast<SocketContext*>(reinterpret_cast<uintptr_t>(io->backend) & ~kZeroPhase);
  }
  static bool zero_phase(IoContext* io) {
    return (reinterpret_cast<uintptr_t>(io->backend) & kZeroPhase) != 0;
  }
  static void set_op(IoContext* io, SocketContext* sc, bool zero) {
    io->backend = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(sc) | (zero ? kZeroPhase : 0));
  }
  static bool skip_on(SocketContext* sc) { return sc->port.skip_on_success; }

  bool load_extensions(std::string* why);
  bool probe_reuse();
  SOCKET new_socket() const;
  int64_t map_status(DWORD ntstatus) const;

  // Issue helpers; the caller holds sc->port.mu. Each either leaves the op
  // pending (a packet will come) or delivers its one result.
  void issue_recv(SocketContext* sc, IoContext* io) REQUIRES(sc->port.mu);
  void issue_send(SocketContext* sc, IoContext* io) REQUIRES(sc->port.mu);
  // Non-blocking read after a zero-byte receive. true: *res is final;
  // false: nothing there yet (spurious wake-up), re-arm the zero-byte read.
  bool read_now(SocketContext* sc, IoContext* io, int64_t* res);

  // Delivers a result that no kernel packet will carry.
  void deliver(IoContext* io, int64_t result);

  // Turns one dequeued kernel packet into a result. Returns false when the op
  // was posted again (zero-byte read re-armed) and yields nothing yet.
  bool finish(IoContext* io, DWORD status, DWORD bytes, int64_t* res);

  // Makes this thread a worker of this port (its inline results go to the
  // thread's ready list).
  void adopt_thread();

  const uint64_t id_ = g_next_port_id.fetch_add(1);
  EngineConfig cfg_;
  HANDLE port_ = nullptr;
  bool wsa_started_ = false;
  // Read by posting / completing threads while cancel_accepts() closes it.
  std::atomic<SOCKET> listen_{INVALID_SOCKET};
  int family_ = AF_INET;
  LPFN_ACCEPTEX accept_ex_ = nullptr;
  LPFN_GETACCEPTEXSOCKADDRS get_addrs_ = nullptr;
  LPFN_DISCONNECTEX disconnect_ex_ = nullptr;
  RtlNtStatusToDosErrorFn nt_to_dos_ = nullptr;
  bool skip_ = false;   // FILE_SKIP_COMPLETION_PORT_ON_SUCCESS on accepted sockets
  bool reuse_ = false;  // DisconnectEx(TF_REUSE_SOCKET) works here

  // Accept side + reusable sockets.
  RankedMutex accept_mu_{LockRank::port_queue};
  bool accepts_cancelled_ GUARDED_BY(accept_mu_) = false;
  std::vector<SOCKET> spare_ GUARDED_BY(accept_mu_);
  size_t spare_max_ = 0;
  IocpReuseTrace trace_ GUARDED_BY(accept_mu_);
};

IocpPort::~IocpPort() {
  if (tl_ready.owner == id_) {
    tl_ready.owner = 0;
    tl_ready.owner_port = nullptr;
    tl_ready.q = IoQueue{};
  }
  {
    LockGuard g(accept_mu_);
    for (SOCKET s : spare_) closesocket(s);
    spare_.clear();
  }
  SOCKET ls = listen_.exchange(INVALID_SOCKET);
  if (ls != INVALID_SOCKET) closesocket(ls);
  if (port_) CloseHandle(port_);
  if (wsa_started_) WSACleanup();
}

bool IocpPort::open(const EngineConfig& cfg, std::string* why) {
  cfg_ = cfg;
  // Environment overrides, so the shared core test can run every mode.
  cfg_.zero_byte_recv = env_flag("IOCPGEN_IOCP_ZERO_BYTE_RECV", cfg.zero_byte_recv);
  cfg_.socket_reuse = env_flag("IOCPGEN_IOCP_SOCKET_REUSE", cfg.socket_reuse);
  if (cfg_.zero_byte_recv && cfg_.recv_depth > 1) {
    // With several zero-byte reads posted, the follow-up reads could take the
    // stream's bytes in a different order than the receives' sequence
    // numbers. One posted receive per socket is the point of the mode anyway.
    fprintf(stderr, "iocpgen: iocp: zero_byte_recv needs recv_depth 1 (have %u); using full-buffer receives\n",
            cfg_.recv_depth);
    cfg_.zero_byte_recv = false;
  }
  WSADATA wd;
  int rc = WSAStartup(MAKEWORD(2, 2), &wd);
  if (rc != 0) {
    if (why) *why = "WSAStartup failed: " + std::to_string(rc);
    return false;
  }
  wsa_started_ = true;
  // Concurrency = workers: the port releases at most that many at once.
  port_ = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, DWORD(cfg.workers > 0 ? cfg.workers : 0));
  if (!port_) {
    if (why) *why = "CreateIoCompletionPort failed: " + std::to_string(GetLastError());
    return false;
  }
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  if (ntdll)
    nt_to_dos_ = reinterpret_cast<RtlNtStatusToDosErrorFn>(
        reinterpret_cast<void*>(GetProcAddress(ntdll, "RtlNtStatusToDosError")));

  // Skip-on-success is only safe when every TCP provider hands out real
  // (IFS) handles; a layered provider without them would lose completions.
  bool ifs = true;
  {
    int protos[] = {IPPROTO_TCP, 0};
    DWORD len = 0;
    WSAEnumProtocolsW(protos, nullptr, &len);
    std::vector<char> buf(len ? len : 1);
    int n = WSAEnumProtocolsW(protos, reinterpret_cast<WSAPROTOCOL_INFOW*>(buf.data()), &len);
    if (n == SOCKET_ERROR) {
      ifs = false;
    } else {
      const WSAPROTOCOL_INFOW* p = reinterpret_cast<const WSAPROTOCOL_INFOW*>(buf.data());
      for (int i = 0; i < n; ++i)
        if (!(p[i].dwServiceFlags1 & XP1_IFS_HANDLES)) ifs = false;
    }
  }
  skip_ = ifs && env_flag("IOCPGEN_IOCP_SKIP_ON_SUCCESS", true);
  spare_max_ = size_t(cfg.accept_backlog > 0 ? cfg.accept_backlog : 1) * 4;
  fprintf(stderr, "iocpgen: iocp: skip_on_success=%d zero_byte_recv=%d socket_reuse=%s\n", int(skip_),
          int(cfg_.zero_byte_recv), cfg_.socket_reuse ? "requested" : "off");
  return true;
}

SOCKET IocpPort::new_socket() const {
  return WSASocketW(family_, SOCK_STREAM, IPPROTO_TCP, nullptr, 0,
                    WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

bool IocpPort::load_extensions(std::string* why) {
  struct Ext {
    GUID guid;
    void* out;
    size_t size;
    const char* name;
  };
  GUID g_accept = WSAID_ACCEPTEX, g_addrs = WSAID_GETACCEPTEXSOCKADDRS, g_disc = WSAID_DISCONNECTEX;
  Ext exts[] = {
      {g_accept, &accept_ex_, sizeof accept_ex_, "AcceptEx"},
      {g_addrs, &get_addrs_, sizeof get_addrs_, "GetAcceptExSockaddrs"},
      {g_disc, &disconnect_ex_, sizeof disconnect_ex_, "DisconnectEx"},
  };
  for (Ext& e : exts) {
    DWORD got = 0;
    if (WSAIoctl(listen_, SIO_GET_EXTENSION_FUNCTION_POINTER, &e.guid, sizeof e.guid, e.out, DWORD(e.size),
                 &got, nullptr, nullptr) != 0) {
      if (why) *why = std::string("WSAIoctl(") + e.name + ") failed: " + std::to_string(WSAGetLastError());
      return false;
    }
  }
  return true;
}

bool IocpPort::listen(const std::string& host, uint16_t port, int backlog, bool reuse_port, uint16_t* bound_port,
                      std::string* why) {
  if (reuse_port) {
    // Windows has no load-balancing port sharing: shards there listen on a port each.
    if (why) *why = "reusePort is not supported on Windows: give each shard a port of its own";
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res) != 0 || !res) {
    if (why) *why = "bad listen address: " + host;
    return false;
  }
  family_ = res->ai_family;
  listen_ = new_socket();
  if (listen_ == INVALID_SOCKET) {
    freeaddrinfo(res);
    if (why) *why = "WSASocket failed: " + std::to_string(WSAGetLastError());
    return false;
  }
  // Nobody else may bind the same port while we listen.
  BOOL one = TRUE;
  setsockopt(listen_, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, reinterpret_cast<const char*>(&one), sizeof one);
  if (family_ == AF_INET6) {
    DWORD off = 0;  // dual-stack when listening on ::
    setsockopt(listen_, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&off), sizeof off);
  }
  int brc = ::bind(listen_, res->ai_addr, int(res->ai_addrlen));
  freeaddrinfo(res);
  if (brc != 0 || ::listen(listen_, backlog > 0 ? backlog : SOMAXCONN) != 0) {
    if (why) *why = "bind/listen failed: " + std::to_string(WSAGetLastError());
    return false;
  }
  sockaddr_storage ss{};
  int sl = sizeof ss;
  getsockname(listen_, reinterpret_cast<sockaddr*>(&ss), &sl);
  if (bound_port)
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                           : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (!CreateIoCompletionPort(reinterpret_cast<HANDLE>(listen_.load()), port_, kListenKey, 0)) {
    if (why) *why = "associating the listen socket failed: " + std::to_string(GetLastError());
    return false;
  }
  if (!load_extensions(why)) return false;

  if (cfg_.socket_reuse) {
    // Test seam: act as if the probe passed, to drive the reuse path where the probe
    // cannot (Wine ignores TF_REUSE_SOCKET).
    const char* force = std::getenv("IOCPGEN_IOCP_REUSE_PROBE");
    reuse_ = force && std::strcmp(force, "pass") == 0 ? true : probe_reuse();
    // Logged once per process, not once per engine.
    static std::atomic<bool> logged{false};
    if (!reuse_ && !logged.exchange(true))
      fprintf(stderr,
              "iocpgen: iocp: socket reuse (DisconnectEx TF_REUSE_SOCKET) does not work here; "
              "falling back to closesocket + new socket\n");
  }
  return true;
}

// Run-time check that a socket recycled with DisconnectEx(TF_REUSE_SOCKET)
// can be accepted into again and still gets its receive completions (wine
// 8 fails the last step). Uses a private port and a loopback pair.
bool IocpPort::probe_reuse() {
  HANDLE cp = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (!cp) return false;
  SOCKET ls = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
  SOCKET as = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
  SOCKET c1 = INVALID_SOCKET, c2 = INVALID_SOCKET;
  bool ok = false;
  LPFN_ACCEPTEX acc = nullptr;
  LPFN_DISCONNECTEX disc = nullptr;
  struct Probe {
    OVERLAPPED ov;
  } op_acc{}, op_disc{}, op_recv{};
  char addrs[2 * kAcceptAddrLen];
  char rbuf[8];
  auto wait_for = [&](OVERLAPPED* want, DWORD ms, DWORD* bytes) -> bool {
    OVERLAPPED_ENTRY e{};
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(cp, &e, 1, &n, ms, FALSE) || n != 1) return false;
    if (bytes) *bytes = e.dwNumberOfBytesTransferred;
    return e.lpOverlapped == want && DWORD(e.lpOverlapped->Internal) == kStatusSuccess;
  };
  do {
    if (ls == INVALID_SOCKET || as == INVALID_SOCKET) break;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int al = sizeof a;
    if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) || ::listen(ls, 4) ||
        getsockname(ls, reinterpret_cast<sockaddr*>(&a), &al))
      break;
    GUID g1 = WSAID_ACCEPTEX, g2 = WSAID_DISCONNECTEX;
    DWORD got = 0;
    if (WSAIoctl(ls, SIO_GET_EXTENSION_FUNCTION_POINTER, &g1, sizeof g1, &acc, sizeof acc, &got, nullptr,
                 nullptr) ||
        WSAIoctl(ls, SIO_GET_EXTENSION_FUNCTION_POINTER, &g2, sizeof g2, &disc, sizeof disc, &got, nullptr,
                 nullptr))
      break;
    if (!CreateIoCompletionPort(reinterpret_cast<HANDLE>(ls), cp, 1, 0) ||
        !CreateIoCompletionPort(reinterpret_cast<HANDLE>(as), cp, 2, 0))
      break;
    // Same notification mode as real connections, so a lost packet shows.
    if (skip_) SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(as), FILE_SKIP_COMPLETION_PORT_ON_SUCCESS);
    // Round 1: plain accept, then disconnect for reuse.
    if (!acc(ls, as, addrs, 0, kAcceptAddrLen, kAcceptAddrLen, &got, &op_acc.ov) &&
        WSAGetLastError() != ERROR_IO_PENDING)
      break;
    c1 = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (c1 == INVALID_SOCKET || connect(c1, reinterpret_cast<sockaddr*>(&a), sizeof a)) break;
    if (!wait_for(&op_acc.ov, 2000, nullptr)) break;
    setsockopt(as, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<char*>(&ls), sizeof ls);
    closesocket(c1);  // peer goes first, as after a normal client quit
    c1 = INVALID_SOCKET;
    if (disc(as, &op_disc.ov, TF_REUSE_SOCKET, 0)) {
      if (!skip_ && !wait_for(&op_disc.ov, 2000, nullptr)) break;
    } else {
      if (WSAGetLastError() != ERROR_IO_PENDING || !wait_for(&op_disc.ov, 2000, nullptr)) break;
    }
    // Round 2: accept into the recycled socket and see a receive complete.
    memset(&op_acc, 0, sizeof op_acc);
    if (!acc(ls, as, addrs, 0, kAcceptAddrLen, kAcceptAddrLen, &got, &op_acc.ov) &&
        WSAGetLastError() != ERROR_IO_PENDING)
      break;
    c2 = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (c2 == INVALID_SOCKET || connect(c2, reinterpret_cast<sockaddr*>(&a), sizeof a)) break;
    if (!wait_for(&op_acc.ov, 2000, nullptr)) break;
    setsockopt(as, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<char*>(&ls), sizeof ls);
    WSABUF wb{sizeof rbuf, rbuf};
    DWORD flags = 0, n = 0;
    int rc = WSARecv(as, &wb, 1, &n, &flags, &op_recv.ov, nullptr);
    if (rc != 0 && WSAGetLastError() != WSA_IO_PENDING) break;
    if (rc == 0 && skip_) break;  // nothing was sent yet: cannot have data
    if (send(c2, "r", 1, 0) != 1) break;
    DWORD bytes = 0;
    ok = wait_for(&op_recv.ov, 1000, &bytes) && bytes == 1;
  } while (false);
  if (c1 != INVALID_SOCKET) closesocket(c1);
  if (c2 != INVALID_SOCKET) closesocket(c2);
  if (as != INVALID_SOCKET) closesocket(as);
  if (ls != INVALID_SOCKET) closesocket(ls);
  // Closing the sockets aborts anything still pending; collect it before the
  // OVERLAPPEDs on this stack frame go away.
  OVERLAPPED_ENTRY e[4];
  ULONG n = 0;
  while (GetQueuedCompletionStatusEx(cp, e, 4, &n, 100, FALSE) && n) {
  }
  CloseHandle(cp);
  return ok;
}

int64_t IocpPort::map_status(DWORD st) const {
  if (st == kStatusSuccess) return 0;
  DWORD err = nt_to_dos_ ? DWORD(nt_to_dos_(LONG(st))) : ERROR_GEN_FAILURE;
  return map_error(err);
}

bool IocpPort::associate(SocketContext* sc) {
  HANDLE h = reinterpret_cast<HANDLE>(sc->sock);
  if (!CreateIoCompletionPort(h, port_, reinterpret_cast<ULONG_PTR>(sc), 0)) {
    // A recycled socket is already bound to this port (a handle can be bound
    // only once); its old key is harmless because keys are not trusted.
    if (GetLastError() != ERROR_INVALID_PARAMETER) return false;
  }
  bool skip = false;
  if (skip_)
    skip = SetFileCompletionNotificationModes(h, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE) != 0;
  if (cfg_.zero_byte_recv) {
    // The read that follows a zero-byte completion must not block. Overlapped
    // calls are unaffected by this mode.
    u_long nb = 1;
    ioctlsocket(sc->sock, FIONBIO, &nb);
  }
  LockGuard g(sc->port.mu);
  sc->port.reset();
  sc->port.registered = true;
  sc->port.skip_on_success = skip;
  return true;
}

// ---- delivering results -----------------------------------------------------

void IocpPort::deliver(IoContext* io, int64_t result) {
  io->result = result;
  if (tl_ready.owner == id_) {
    tl_ready.q.push(io);
    return;
  }
  // Fails only when the system is out of non-paged pool; the completion
  // must not be lost, so retry for a while.
  for (int i = 0; !PostQueuedCompletionStatus(port_, 0, kSyntheticKey, &io->overlapped); ++i) {
    if (i == 5000) {
      fprintf(stderr, "iocpgen: iocp: PostQueuedCompletionStatus keeps failing (%lu); completion lost\n",
              GetLastError());
      return;
    }
    Sleep(1);
  }
}

void IocpPort::adopt_thread() {
  if (tl_ready.owner == id_) return;
  // The thread used to serve another port (not the engine's pattern): hand
  // that port's pending inline results back to it through its queue.
  while (IoContext* io = tl_ready.q.pop()) {
    if (tl_ready.owner_port)
      PostQueuedCompletionStatus(tl_ready.owner_port, 0, kSyntheticKey, &io->overlapped);
  }
  tl_ready.owner = id_;
  tl_ready.owner_port = port_;
}

// ---- accept -----------------------------------------------------------------

bool IocpPort::post_accept(IoContext* io) {
  io->backend = nullptr;
  io->peer_addr_len = 0;
  SOCKET s = INVALID_SOCKET;
  SOCKET ls = INVALID_SOCKET;
  bool cancelled;
  {
    LockGuard g(accept_mu_);
    ls = listen_.load();
    cancelled = accepts_cancelled_ || ls == INVALID_SOCKET;
    if (!cancelled && !spare_.empty()) {
      s = spare_.back();
      spare_.pop_back();
      ++trace_.reaccepts;
      trace_.last_reaccepted = s;
    }
  }
  if (cancelled) {
    io->accept_sock = kInvalidSocket;
    deliver(io, kIoCanceled);
    return true;
  }
  if (s == INVALID_SOCKET) s = new_socket();
  if (s == INVALID_SOCKET) {
    io->accept_sock = kInvalidSocket;
    deliver(io, map_error(WSAGetLastError()));
    return true;
  }
  io->accept_sock = s;
  memset(&io->overlapped, 0, sizeof io->overlapped);
  DWORD got = 0;
  // No receive data: the accept completes at connect time, so an idle
  // client cannot hold an accept slot (and a buffer) hostage.
  if (accept_ex_(ls, s, io->addr_area(), 0, kAcceptAddrLen, kAcceptAddrLen, &got, &io->overlapped))
    return true;  // success at once still queues a packet (no skip mode on listen_)
  int err = WSAGetLastError();
  if (err == ERROR_IO_PENDING) return true;
  // Failed at once: no packet. The engine closes accept_sock on error.
  deliver(io, map_error(DWORD(err)));
  return true;
}

void IocpPort::cancel_accepts() {
  SOCKET ls;
  {
    LockGuard g(accept_mu_);
    accepts_cancelled_ = true;
    ls = listen_.exchange(INVALID_SOCKET);
  }
  if (ls != INVALID_SOCKET) {
    CancelIoEx(reinterpret_cast<HANDLE>(ls), nullptr);
    closesocket(ls);
  }
}

bool IocpPort::reuse_socket(socket_t s) {
  if (!reuse_ || s == kInvalidSocket) return false;
  LockGuard g(accept_mu_);
  if (accepts_cancelled_ || spare_.size() >= spare_max_) return false;
  spare_.push_back(s);
  ++trace_.given_back;
  trace_.last_given_back = s;
  return true;
}

// ---- receive ----------------------------------------------------------------

bool IocpPort::post_recv(SocketContext* sc, IoContext* io) {
  LockGuard g(sc->port.mu);
  set_op(io, sc, cfg_.zero_byte_recv);
  if (sc->port.cancelled) {
    deliver(io, kIoCanceled);
    return true;
  }
  issue_recv(sc, io);
  return true;
}

void IocpPort::issue_recv(SocketContext* sc, IoContext* io) {
  // Bounded: each lap is a spurious zero-byte wake-up with nothing to read.
  for (int lap = 0; lap < 64; ++lap) {
    const bool zero = zero_phase(io);
    memset(&io->overlapped, 0, sizeof io->overlapped);
    WSABUF wb;
    wb.buf = reinterpret_cast<char*>(io->buf);
    wb.len = zero ? 0 : io->len;
    DWORD got = 0, flags = 0;
    if (WSARecv(sc->sock, &wb, 1, &got, &flags, &io->overlapped, nullptr) == 0) {
      if (!skip_on(sc)) return;  // the kernel queues the packet anyway
      if (!zero) {
        deliver(io, int64_t(got));
        return;
      }
      int64_t res;
      if (read_now(sc, io, &res)) {
        deliver(io, res);
        return;
      }
      continue;  // re-arm
    }
    int err = WSAGetLastError();
    if (err == WSA_IO_PENDING) return;
    deliver(io, map_error(DWORD(err)));
    return;
  }
  deliver(io, kIoFailed);
}

bool IocpPort::read_now(SocketContext* sc, IoContext* io, int64_t* res) {
  WSABUF wb;
  wb.buf = reinterpret_cast<char*>(io->buf);
  wb.len = io->len;
  DWORD got = 0, flags = 0;
  // Non-overlapped call on a FIONBIO socket: returns at once.
  if (WSARecv(sc->sock, &wb, 1, &got, &flags, nullptr, nullptr) == 0) {
    *res = int64_t(got);  // 0 = orderly close by the peer
    return true;
  }
  int err = WSAGetLastError();
  if (err == WSAEWOULDBLOCK) return false;
  *res = map_error(DWORD(err));
  return true;
}

// ---- send -------------------------------------------------------------------

bool IocpPort::post_send(SocketContext* sc, IoContext* io) {
  LockGuard g(sc->port.mu);
  set_op(io, sc, false);
  if (sc->port.cancelled) {
    deliver(io, kIoCanceled);
    return true;
  }
  issue_send(sc, io);
  return true;
}

void IocpPort::issue_send(SocketContext* sc, IoContext* io) {
  memset(&io->overlapped, 0, sizeof io->overlapped);
  WSABUF wb;
  wb.buf = reinterpret_cast<char*>(io->buf + io->off);
  wb.len = io->len - io->off;
  DWORD sent = 0;
  if (WSASend(sc->sock, &wb, 1, &sent, 0, &io->overlapped, nullptr) == 0) {
    if (!skip_on(sc)) return;
    if (sent < wb.len) {
      // An overlapped stream send finishes whole or fails; a short one would
      // let a later send overtake the rest, so treat it as an error.
      deliver(io, kIoFailed);
      return;
    }
    io->off = io->len;
    deliver(io, int64_t(sent));
    return;
  }
  int err = WSAGetLastError();
  if (err == WSA_IO_PENDING) return;
  deliver(io, map_error(DWORD(err)));
}

// ---- disconnect -------------------------------------------------------------

// The engine posts this once, after cancel() (port.h), so "cancelled" does not refuse it:
// that would make every socket unfit for reuse.
bool IocpPort::post_disconnect(SocketContext* sc, IoContext* io) {
  LockGuard g(sc->port.mu);
  set_op(io, sc, false);
  if (!reuse_) {
    // Same as the other backends: half-close and complete at once. (wine's
    // DisconnectEx is exactly this, but reports pending while completing
    // inline, which loses the packet in skip-on-success mode.)
    shutdown(sc->sock, SD_SEND);
    deliver(io, 0);
    return true;
  }
  memset(&io->overlapped, 0, sizeof io->overlapped);
  if (disconnect_ex_(sc->sock, &io->overlapped, TF_REUSE_SOCKET, 0)) {
    if (skip_on(sc)) deliver(io, 0);
    return true;
  }
  int err = WSAGetLastError();
  if (err != ERROR_IO_PENDING) deliver(io, map_error(DWORD(err)));
  return true;
}

// ---- cancel -----------------------------------------------------------------

void IocpPort::cancel(SocketContext* sc) {
  LockGuard g(sc->port.mu);
  sc->port.cancelled = true;
  // Every op posted on this handle, from any thread. Ops that already
  // finished keep their real result; the rest complete as aborted.
  if (sc->sock != kInvalidSocket) CancelIoEx(reinterpret_cast<HANDLE>(sc->sock), nullptr);
}

// ---- completions ------------------------------------------------------------

bool IocpPort::finish(IoContext* io, DWORD status, DWORD bytes, int64_t* res) {
  switch (io->kind) {
    case OpKind::accept: {
      if (status != kStatusSuccess) {
        *res = map_status(status);
        return true;
      }
      SOCKET ls = listen_.load();
      SOCKET s = io->accept_sock;
      // Gives the accepted socket the listener's properties so getpeername,
      // shutdown and friends work on it.
      if (ls == INVALID_SOCKET ||
          setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<char*>(&ls), sizeof ls) != 0) {
        *res = ls == INVALID_SOCKET ? kIoCanceled : map_error(DWORD(WSAGetLastError()));
        return true;
      }
      sockaddr* local = nullptr;
      sockaddr* remote = nullptr;
      int llen = 0, rlen = 0;
      unsigned char* area = io->addr_area();
      get_addrs_(area, 0, kAcceptAddrLen, kAcceptAddrLen, &local, &llen, &remote, &rlen);
      // remote points into the area itself: copy out before writing back.
      unsigned char tmp[IoContext::kAddrRoom];
      int n = 0;
      if (remote && rlen > 0 && size_t(rlen) <= sizeof tmp) {
        memcpy(tmp, remote, size_t(rlen));
        n = rlen;
      }
      memset(area, 0, IoContext::kAddrRoom);
      memcpy(area, tmp, size_t(n));
      io->peer_addr_len = n;
      *res = 0;
      return true;
    }
    case OpKind::recv: {
      if (status != kStatusSuccess) {
        *res = map_status(status);
        return true;
      }
      if (!zero_phase(io)) {
        *res = int64_t(bytes);
        return true;
      }
      // Zero-byte read finished: data (or EOF) is waiting. Read it now.
      SocketContext* sc = sc_of(io);
      LockGuard g(sc->port.mu);
      if (sc->port.cancelled) {
        *res = kIoCanceled;
        return true;
      }
      if (read_now(sc, io, res)) return true;
      issue_recv(sc, io);  // spurious: arm again (may deliver on its own)
      return false;
    }
    case OpKind::send: {
      if (status != kStatusSuccess) {
        *res = map_status(status);
        return true;
      }
      if (bytes < io->len - io->off) {
        *res = kIoFailed;  // see issue_send: never split a send
        return true;
      }
      io->off = io->len;
      *res = int64_t(bytes);
      return true;
    }
    case OpKind::disconnect:
      *res = status == kStatusSuccess ? 0 : map_status(status);
      return true;
    case OpKind::none:
      break;
  }
  *res = kIoFailed;
  return true;
}

size_t IocpPort::dequeue(int, Completion* out, size_t max, int timeout_ms) {
  if (max == 0) return 0;
  adopt_thread();
  size_t n = 0;
  // Results that finished inline on this thread come first, without a call
  // into the kernel.
  while (n < max && !tl_ready.q.empty()) {
    IoContext* io = tl_ready.q.pop();
    out[n++] = Completion{io, io->result};
  }
  DWORD wait = n ? 0 : (timeout_ms < 0 ? INFINITE : DWORD(timeout_ms));
  bool woken = false;
  while (n < max) {
    OVERLAPPED_ENTRY ents[64];
    ULONG room = ULONG(max - n < 64 ? max - n : 64);
    ULONG got = 0;
    if (!GetQueuedCompletionStatusEx(port_, ents, room, &got, wait, FALSE)) break;  // timeout / closed
    int wakes = 0;
    for (ULONG i = 0; i < got; ++i) {
      OVERLAPPED_ENTRY& e = ents[i];
      if (!e.lpOverlapped) {
        ++wakes;
        continue;
      }
      IoContext* io = reinterpret_cast<IoContext*>(e.lpOverlapped);
      if (e.lpCompletionKey == kSyntheticKey) {
        out[n++] = Completion{io, io->result};
        continue;
      }
      int64_t res = 0;
      // Internal holds the NTSTATUS of the finished operation.
      if (finish(io, DWORD(e.lpOverlapped->Internal), e.dwNumberOfBytesTransferred, &res))
        out[n++] = Completion{io, res};
    }
    // finish() may have produced inline results for this thread.
    while (n < max && !tl_ready.q.empty()) {
      IoContext* io = tl_ready.q.pop();
      out[n++] = Completion{io, io->result};
    }
    if (wakes) {
      // Keep one wake for this call only if it has nothing else to return;
      // the rest belong to other workers.
      if (n == 0 && !woken) {
        woken = true;
        --wakes;
      }
      while (wakes--) PostQueuedCompletionStatus(port_, 0, kWakeKey, nullptr);
    }
    if (n > 0 || woken) break;
    // Everything was re-posted (spurious zero-byte wake-ups): wait again.
  }
  return n;
}

void IocpPort::wake(int) { PostQueuedCompletionStatus(port_, 0, kWakeKey, nullptr); }

}  // namespace iocp

std::unique_ptr<Port> make_iocp_port() { return std::unique_ptr<Port>(new iocp::IocpPort()); }

IocpReuseTrace iocp_reuse_trace(Port* port) {
  iocp::IocpPort* p = dynamic_cast<iocp::IocpPort*>(port);
  return p ? p->trace() : IocpReuseTrace{};
}

}  // namespace iocpgen

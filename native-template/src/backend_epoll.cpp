// epoll backend: emulates completions. Posted ops wait in per-socket queues;
// on readiness a worker performs the syscall and returns the completion.
// One shared epoll set with EPOLLONESHOT, so a socket's readiness is handled
// by one worker at a time; all queue access is under the socket's port.mu.
// Synthetic completions (cancel, post after cancel, overflow) go through a
// shared done queue signalled by a level-triggered eventfd.
#ifndef _WIN32
#include <fcntl.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstring>

#include "port.h"

namespace iocpgen {
namespace {

class EpollPort final : public Port {
 public:
  ~EpollPort() override {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (ev_ >= 0) ::close(ev_);
    if (ep_ >= 0) ::close(ep_);
  }
  const char* name() const override { return "epoll"; }

  bool open(const EngineConfig&, std::string* why) override {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    ev_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ < 0 || ev_ < 0) return fail(why, "epoll_create1/eventfd");
    epoll_event e{};
    e.events = EPOLLIN;  // level-triggered: readable while work is queued
    e.data.ptr = nullptr;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, ev_, &e) != 0) return fail(why, "epoll_ctl eventfd");
    return true;
  }

  bool listen(const std::string& host, uint16_t port, int backlog, bool reuse_port, uint16_t* bound,
              std::string* why) override {
    int fd = net::make_listener(host, port, backlog, true, reuse_port, bound, why);
    if (fd < 0) return false;
    listen_fd_ = fd;
    epoll_event e{};
    e.events = EPOLLONESHOT;
    e.data.ptr = &listener_;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) != 0) return fail(why, "epoll_ctl listen");
    return true;
  }

  bool associate(SocketContext* sc) override {
    LockGuard g(sc->port.mu);
    sc->port.reset();
    int fl = fcntl(sc->sock, F_GETFL);
    if (fl < 0 || fcntl(sc->sock, F_SETFL, fl | O_NONBLOCK) != 0) return false;
    epoll_event e{};
    e.events = EPOLLONESHOT;  // armed by the first post
    e.data.ptr = sc;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, sc->sock, &e) != 0) return false;
    sc->port.registered = true;
    return true;
  }

  bool post_accept(IoContext* io) override {
    LockGuard g(listener_.mu);
    if (listener_.cancelled || listen_fd_ < 0) {
      push_done(io, kIoCanceled);
      return true;
    }
    listener_.recv_q.push(io);
    arm(listen_fd_, &listener_, EPOLLIN);
    return true;
  }

  bool post_recv(SocketContext* sc, IoContext* io) override { return post(sc, io, true); }
  bool post_send(SocketContext* sc, IoContext* io) override { return post(sc, io, false); }

  bool post_disconnect(SocketContext* sc, IoContext* io) override {
    net::shutdown_both(sc->sock);
    push_done(io, 0);
    return true;
  }

  void cancel(SocketContext* sc) override {
    IoQueue victims;
    {
      LockGuard g(sc->port.mu);
      sc->port.cancelled = true;
      sc->port.recv_q.splice_to(victims);
      sc->port.send_q.splice_to(victims);
    }
    push_all_done(victims, kIoCanceled);
  }

  void cancel_accepts() override {
    IoQueue victims;
    {
      LockGuard g(listener_.mu);
      listener_.cancelled = true;
      listener_.recv_q.splice_to(victims);
      if (listen_fd_ >= 0) {
        epoll_ctl(ep_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        ::close(listen_fd_);
        listen_fd_ = -1;
      }
    }
    push_all_done(victims, kIoCanceled);
  }

  size_t dequeue(int, Completion* out, size_t max, int timeout_ms) override {
    bool woken = false;
    size_t n = take_done(out, max, &woken);
    if (n || woken) return n;
    epoll_event evs[64];
    int cap = int(max < 64 ? max : 64);
    int k = epoll_wait(ep_, evs, cap, timeout_ms);
    for (int i = 0; i < k; ++i) {
      void* p = evs[i].data.ptr;
      if (p == nullptr) {
        if (n < max) n += take_done(out + n, max - n, &woken);
      } else if (p == &listener_) {
        on_listener(out, &n, max);
      } else {
        on_socket(static_cast<SocketContext*>(p), evs[i].events, out, &n, max);
      }
    }
    return n;
  }

  void wake(int) override {
    LockGuard g(done_mu_);
    ++wakes_;
    signal_locked();
  }

  // Caller-driven: the epoll set itself is pollable, and level-triggered while work waits.
  int notify_fd() const override { return ep_; }

 private:
  static bool fail(std::string* why, const char* what) {
    if (why) *why = std::string(what) + ": " + strerror(errno);
    return false;
  }

  bool post(SocketContext* sc, IoContext* io, bool is_recv) {
    LockGuard g(sc->port.mu);
    if (sc->port.cancelled || sc->sock == kInvalidSocket) {
      push_done(io, kIoCanceled);
      return true;
    }
    (is_recv ? sc->port.recv_q : sc->port.send_q).push(io);
    arm_socket(sc);
    return true;
  }

  void arm_socket(SocketContext* sc) REQUIRES(sc->port.mu) {
    uint32_t want = 0;
    if (!sc->port.recv_q.empty()) want |= EPOLLIN | EPOLLRDHUP;
    if (!sc->port.send_q.empty()) want |= EPOLLOUT;
    if (want) arm(sc->sock, sc, want);
  }

  void arm(int fd, void* key, uint32_t events) {
    epoll_event e{};
    e.events = events | EPOLLONESHOT;
    e.data.ptr = key;
    epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e);
  }

  static void emit(IoContext* io, int64_t res, Completion* out, size_t* n, size_t max,
                   IoQueue* overflow) {
    if (*n < max) {
      out[(*n)++] = Completion{io, res};
    } else {
      io->result = res;
      overflow->push(io);
    }
  }

  void on_listener(Completion* out, size_t* n, size_t max) {
    IoQueue overflow;
    {
      LockGuard g(listener_.mu);
      while (IoContext* io = listener_.recv_q.head) {
        if (listen_fd_ < 0) break;
        socklen_t sl = IoContext::kAddrRoom;
        int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(io->addr_area()), &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED)) continue;
        listener_.recv_q.pop();
        if (fd < 0) {
          emit(io, -errno, out, n, max, &overflow);
          break;  // e.g. EMFILE: let the engine re-post instead of spinning here
        }
        io->accept_sock = fd;
        io->peer_addr_len = int(sl);
        emit(io, 0, out, n, max, &overflow);
      }
      if (!listener_.recv_q.empty() && listen_fd_ >= 0) arm(listen_fd_, &listener_, EPOLLIN);
    }
    push_all_done_results(overflow);
  }

  void on_socket(SocketContext* sc, uint32_t events, Completion* out, size_t* n, size_t max) {
    IoQueue overflow;
    {
      LockGuard g(sc->port.mu);
      int fd = sc->sock;
      if (fd == kInvalidSocket || !sc->port.registered) return;  // stale event for a freed slot
      const uint32_t any = EPOLLERR | EPOLLHUP;
      if (events & (EPOLLIN | EPOLLRDHUP | any)) {
        while (IoContext* io = sc->port.recv_q.head) {
          ssize_t r = ::recv(fd, io->buf, io->len, 0);
          if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (r < 0 && errno == EINTR) continue;
          sc->port.recv_q.pop();
          emit(io, r < 0 ? -errno : r, out, n, max, &overflow);
        }
      }
      if (events & (EPOLLOUT | any)) {
        while (IoContext* io = sc->port.send_q.head) {
          ssize_t r = ::send(fd, io->buf + io->off, io->len - io->off, MSG_NOSIGNAL);
          if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) {
            sc->port.send_q.pop();
            emit(io, -errno, out, n, max, &overflow);
            continue;
          }
          io->off += uint32_t(r);
          if (io->off < io->len) continue;  // partial: keep it at the head
          sc->port.send_q.pop();
          emit(io, io->len, out, n, max, &overflow);
        }
      }
      arm_socket(sc);
    }
    push_all_done_results(overflow);
  }

  // ---- shared done queue ----
  void signal_locked() REQUIRES(done_mu_) {
    if (signalled_) return;
    uint64_t one = 1;
    ssize_t r = ::write(ev_, &one, sizeof one);
    (void)r;
    signalled_ = true;
  }
  void push_done(IoContext* io, int64_t res) {
    io->result = res;
    LockGuard g(done_mu_);
    done_.push(io);
    signal_locked();
  }
  void push_all_done(IoQueue& q, int64_t res) {
    for (IoContext* io = q.head; io; io = io->q_next) io->result = res;
    push_all_done_results(q);
  }
  void push_all_done_results(IoQueue& q) {
    if (q.empty()) return;
    LockGuard g(done_mu_);
    q.splice_to(done_);
    signal_locked();
  }
  size_t take_done(Completion* out, size_t max, bool* woken) {
    LockGuard g(done_mu_);
    size_t n = 0;
    while (n < max && !done_.empty()) {
      IoContext* io = done_.pop();
      out[n++] = Completion{io, io->result};
    }
    if (n == 0 && wakes_ > 0) {
      --wakes_;
      *woken = true;
    }
    if (done_.empty() && wakes_ == 0 && signalled_) {
      uint64_t v;
      ssize_t r = ::read(ev_, &v, sizeof v);
      (void)r;
      signalled_ = false;
    }
    return n;
  }

  int ep_ = -1;
  int ev_ = -1;
  int listen_fd_ = -1;  // guarded by listener_.mu after listen()
  PortSocketState listener_;  // recv_q holds posted accepts
  RankedMutex done_mu_{LockRank::port_queue};
  IoQueue done_ GUARDED_BY(done_mu_);
  uint32_t wakes_ GUARDED_BY(done_mu_) = 0;
  bool signalled_ GUARDED_BY(done_mu_) = false;
};

}  // namespace

std::unique_ptr<Port> make_epoll_port() { return std::unique_ptr<Port>(new EpollPort()); }

}  // namespace iocpgen
#endif  // !_WIN32

// io_uring backend (built when IOCPGEN_HAVE_URING). One ring per worker.
// Only the owning worker touches its ring: io_uring ties requests (and their
// task_work, which interrupts blocking syscalls) to the submitting thread, so
// other threads never submit. They queue posts in the ring's inbox and write
// the ring's eventfd when the inbox was empty; the owner drains the inbox before
// each batch submit.
// Sockets belong to the ring of the worker that accepted them, so the common
// path (recv re-post, echo send) never crosses threads.
// Sends of one socket are serialised (one SQE in flight, the rest queued on
// the socket) so stream order holds and short sends are finished in place.
// Receives too: the kernel does not promise to fill two pending recvs of a
// socket in submission order, and the engine orders data by post order.
// Provided buffers (kernel with multishot recv + buffer rings, probed in
// open(); IOCPGEN_URING_PROVIDED=0 forces the old path): the engine posts one
// buffer-less recv per connection; it becomes a multishot recv that picks
// buffers from the ring's buffer ring when data arrives, so idle connections
// hold none. Each chunk is a Completion with more = true; the stream's end is
// the post's one final completion. Buffers go back only on the
// owner's thread, via recycle_recv_buffer() after the decoder ran. ENOBUFS
// ends a stream without losing data; it is re-armed when buffers come back.
#ifdef IOCPGEN_HAVE_URING
#include <liburing.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cassert>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "port.h"
#include "slab.h"

namespace iocpgen {
namespace {

constexpr uint64_t kIgnore = 0;  // cancel requests' own CQEs
constexpr uint64_t kNudge = 1;   // read on the ring's eventfd completed
constexpr uint64_t kMultiAccept = 2;  // the ring's multishot accept
constexpr int kStash = 64;       // accepted sockets waiting for a posted accept

struct Ring {
  io_uring ring;
  bool inited = false;
  int efd = -1;
  int cq_efd = -1;          // caller-driven: registered, so every CQE makes it readable
  uint64_t efd_buf = 0;     // owner only
  bool efd_armed = false;   // owner only
  IoQueue synth;            // owner only: completions made without a CQE
  // Multishot accept (owner only): one SQE per ring feeds the posted accept
  // contexts; sockets accepted while none is posted wait in the stash.
  bool ms_supported = true;
  bool ms_armed = false;
  bool ms_seen = false;     // a multishot accept has succeeded on this ring
  IoQueue accept_waiters;
  int stash[kStash];
  int stash_n = 0;
  // Provided receive buffers (owner only once workers run).
  io_uring_buf_ring* br = nullptr;  // registered as buffer group 0
  std::unique_ptr<BufferSlab> buf_slab;  // untouched until the kernel fills a buffer
  uint8_t* bufs = nullptr;          // nbufs * buffer_size, zeroed
  uint32_t nbufs = 0;               // power of two
  uint32_t avail = 0;               // in the buffer ring, as far as reaped CQEs tell
  IoQueue starved;                  // streams ended by ENOBUFS, waiting for a buffer
  RankedMutex mu{LockRank::port_ring};
  IoQueue inbox GUARDED_BY(mu);  // posts from other threads (io->backend = socket)
  uint32_t wakes GUARDED_BY(mu) = 0;
  std::atomic<bool> has_inbox{false};
};

class UringPort final : public Port {
 public:
  ~UringPort() override {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    for (int i = 0; i < n_; ++i) {
      for (int k = 0; k < rings_[i].stash_n; ++k) ::close(rings_[i].stash[k]);
      if (rings_[i].inited) io_uring_queue_exit(&rings_[i].ring);
      if (rings_[i].efd >= 0) ::close(rings_[i].efd);
      if (rings_[i].cq_efd >= 0) ::close(rings_[i].cq_efd);
      free(rings_[i].br);  // after queue_exit: the kernel no longer uses them
      rings_[i].buf_slab.reset();
    }
  }
  const char* name() const override { return "uring"; }

  bool open(const EngineConfig& cfg, std::string* why) override {
    // Created on a helper thread: the creating task gets io_uring task state,
    // and task_work aimed at it interrupts that thread's timed blocking calls
    // (EINTR). Keep the application's thread out of it.
    bool ok = false;
    std::thread([&] { ok = create_rings(cfg, why); }).join();
    return ok;
  }

  bool create_rings(const EngineConfig& cfg, std::string* why) {
    caller_ = cfg.caller_driven;
    n_ = cfg.workers < 1 || caller_ ? 1 : cfg.workers;
    rings_.reset(new Ring[n_]);
    // IOCPGEN_URING_MULTISHOT=0 forces single-shot accepts (tests both paths).
    const char* ms = getenv("IOCPGEN_URING_MULTISHOT");
    if (ms && ms[0] == '0')
      for (int i = 0; i < n_; ++i) rings_[i].ms_supported = false;
    for (int i = 0; i < n_; ++i) {
      io_uring_params p{};
      p.flags = IORING_SETUP_CQSIZE;
      p.cq_entries = 16384;
      // The caller-driven ring runs its completions' kernel work only when the driver asks
      // (DEFER_TASKRUN, 6.1+): nothing interrupts the JS thread while it runs handlers, and
      // the registered eventfd still says when there is work. It needs a single issuer,
      // which becomes the driver when it enables the ring. COOP_TASKRUN alone would not do:
      // its completions wait for the driver's next system call, which may be a timer away.
      // IOCPGEN_URING_DEFER=0 (or an older kernel) takes the plain ring.
      const char* df = getenv("IOCPGEN_URING_DEFER");
      deferred_ = caller_ && !(df && df[0] == '0');
      if (deferred_) p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
      int rc = io_uring_queue_init_params(1024, &rings_[i].ring, &p);
      if (rc == -EINVAL && deferred_) {
        deferred_ = false;
        p = io_uring_params{};
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = 16384;
        rc = io_uring_queue_init_params(1024, &rings_[i].ring, &p);
      }
      if (rc < 0) {
        if (why) *why = std::string("io_uring_queue_init: ") + strerror(-rc);
        return false;
      }
      rings_[i].inited = true;
      // NODROP: CQ overflow is buffered, never lost. EXT_ARG: timed waits
      // without a timeout SQE.
      if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_EXT_ARG)) {
        if (why) *why = "kernel lacks IORING_FEAT_NODROP/EXT_ARG";
        return false;
      }
      rings_[i].efd = eventfd(0, EFD_CLOEXEC);
      if (rings_[i].efd < 0) {
        if (why) *why = std::string("eventfd: ") + strerror(errno);
        return false;
      }
      if (caller_) {
        rings_[i].cq_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (rings_[i].cq_efd < 0 || io_uring_register_eventfd(&rings_[i].ring, rings_[i].cq_efd) != 0) {
          if (why) *why = std::string("io_uring_register_eventfd: ") + strerror(errno);
          return false;
        }
      }
    }
    // IOCPGEN_URING_PROVIDED=0 forces single-shot recv into the context's buffer.
    const char* pv = getenv("IOCPGEN_URING_PROVIDED");
    if (!(pv && pv[0] == '0') && probe_recv_multishot()) {
      provided_ = true;
      for (int i = 0; i < n_ && provided_; ++i) provided_ = setup_buffers(rings_[i], cfg);
    }
    return true;
  }

  static uint32_t pow2_at_least(uint32_t v) {
    uint32_t p = 1;
    while (p < v && p < 32768) p <<= 1;
    return p;
  }

  // Owner-to-be (helper thread, before workers). All memory for the ring's
  // buffers is allocated here: the hot path never allocates.
  bool setup_buffers(Ring& ring, const EngineConfig& cfg) {
    buf_size_ = cfg.buffer_size < 64 ? 64 : cfg.buffer_size;
    uint32_t want = cfg.recv_buffers;
    if (!want) {
      // Enough for every connection of this ring to hold one chunk at once.
      uint64_t per = uint64_t(cfg.max_connections) * (cfg.recv_depth ? cfg.recv_depth : 1) / uint32_t(n_);
      want = uint32_t(per < 16 ? 16 : per > 4096 ? 4096 : per);
    }
    ring.nbufs = pow2_at_least(want);
    void* mem = nullptr;
    size_t brsz = sizeof(io_uring_buf) * ring.nbufs;
    if (brsz < 4096) brsz = 4096;
    if (posix_memalign(&mem, 4096, brsz) != 0) return false;
    memset(mem, 0, brsz);
    ring.br = static_cast<io_uring_buf_ring*>(mem);
    try {
      ring.buf_slab.reset(new BufferSlab(size_t(ring.nbufs) * buf_size_));
    } catch (const std::bad_alloc&) {
      return false;
    }
    ring.bufs = ring.buf_slab->data();
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(mem);
    reg.ring_entries = ring.nbufs;
    reg.bgid = 0;
    if (io_uring_register_buf_ring(&ring.ring, &reg, 0) != 0) return false;
    io_uring_buf_ring_init(ring.br);
    const int mask = io_uring_buf_ring_mask(ring.nbufs);
    for (uint32_t b = 0; b < ring.nbufs; ++b)
      io_uring_buf_ring_add(ring.br, ring.bufs + size_t(b) * buf_size_, buf_size_, uint16_t(b), mask, int(b));
    io_uring_buf_ring_advance(ring.br, int(ring.nbufs));
    ring.avail = ring.nbufs;
    return true;
  }

  // Multishot recv (6.0) is a flag, not an op, so the probe table cannot
  // show it: try it on a socketpair in a throwaway ring.
  static bool probe_recv_multishot() {
    io_uring r;
    if (io_uring_queue_init(4, &r, 0) < 0) return false;
    bool ok = false;
    int sv[2] = {-1, -1};
    void* mem = nullptr;
    static char buf[16];  // static: outlives this frame whatever the kernel does late
    if (posix_memalign(&mem, 4096, 4096) == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
      memset(mem, 0, 4096);
      auto* br = static_cast<io_uring_buf_ring*>(mem);
      io_uring_buf_reg reg{};
      reg.ring_addr = reinterpret_cast<uintptr_t>(mem);
      reg.ring_entries = 1;
      reg.bgid = 0;
      if (io_uring_register_buf_ring(&r, &reg, 0) == 0) {
        io_uring_buf_ring_init(br);
        io_uring_buf_ring_add(br, buf, sizeof buf, 0, io_uring_buf_ring_mask(1), 0);
        io_uring_buf_ring_advance(br, 1);
        io_uring_sqe* sqe = io_uring_get_sqe(&r);
        io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
        io_uring_submit(&r);
        ssize_t w = ::write(sv[1], "x", 1);
        io_uring_cqe* cqe = nullptr;
        __kernel_timespec ts{1, 0};
        if (w == 1 && io_uring_wait_cqe_timeout(&r, &cqe, &ts) == 0) {
          ok = cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER) && (cqe->flags & IORING_CQE_F_MORE);
          bool more = cqe->flags & IORING_CQE_F_MORE;
          io_uring_cqe_seen(&r, cqe);
          // End the stream (EOF) and wait for its last CQE before teardown.
          ::shutdown(sv[0], SHUT_RDWR);
          while (more && io_uring_wait_cqe_timeout(&r, &cqe, &ts) == 0) {
            more = cqe->flags & IORING_CQE_F_MORE;
            io_uring_cqe_seen(&r, cqe);
          }
        }
      }
    }
    if (sv[0] >= 0) ::close(sv[0]);
    if (sv[1] >= 0) ::close(sv[1]);
    io_uring_queue_exit(&r);
    free(mem);
    return ok;
  }

  bool provides_recv_buffers() const override { return provided_; }

  // Owner only (the engine dispatches the ring's completions on its worker).
  void recycle_recv_buffer(const Completion& c) override {
    const int r = int(c.buf_id >> 16);
    const uint16_t bid = uint16_t(c.buf_id & 0xffff);
    assert(current_worker() == r && "provided buffer returned off its ring's thread");
    Ring& ring = rings_[r];
    // Not zeroed: the next receive overwrites it, and only the bytes received are read.
    give_back(ring, bid);
    rearm_starved(ring);
  }

  bool listen(const std::string& host, uint16_t port, int backlog, bool reuse_port, uint16_t* bound,
              std::string* why) override {
    // Blocking: accepts are io_uring operations, never a nonblocking accept().
    listen_fd_ = net::make_listener(host, port, backlog, false, reuse_port, bound, why);
    return listen_fd_ >= 0;
  }

  bool associate(SocketContext* sc) override {
    // Owned by the ring of the worker that accepted it: its posts stay local.
    int w = current_worker();
    sc->port.reset();
    sc->port.ring = w >= 0 ? w % n_ : int(sc->self.index % uint32_t(n_));
    sc->port.registered = true;
    return true;
  }

  bool post_accept(IoContext* io) override {
    int w = current_worker();
    int r = w >= 0 ? w % n_ : int(next_ring_.fetch_add(1) % uint32_t(n_));
    io->backend = nullptr;
    return post(r, io);
  }
  bool post_recv(SocketContext* sc, IoContext* io) override {
    io->backend = sc;
    return post(sc->port.ring, io);
  }
  bool post_send(SocketContext* sc, IoContext* io) override {
    io->backend = sc;
    return post(sc->port.ring, io);
  }
  bool post_disconnect(SocketContext* sc, IoContext* io) override {
    net::shutdown_both(sc->sock);
    io->backend = sc;
    return post(sc->port.ring, io);
  }

  // The engine has already shut the socket down, which completes everything
  // in flight promptly. The owner also issues an explicit cancel.
  void cancel(SocketContext* sc) override {
    int r = sc->port.ring;
    if (current_worker() != r) return;
    Ring& ring = rings_[r];
    drain_inbox(ring, r);  // keep post -> cancel order
    sc->port.cancelled = true;
    while (IoContext* io = sc->port.send_q.pop()) synth(ring, io, kIoCanceled);
    while (IoContext* io = sc->port.recv_q.pop()) synth(ring, io, kIoCanceled);
    if (sc->port.starved) {
      // Not in the kernel: nothing else would complete it.
      IoQueue keep;
      while (IoContext* io = ring.starved.pop()) {
        if (io->backend == sc) {
          sc->port.starved = false;
          sc->port.recv_inflight = false;
          synth(ring, io, kIoCanceled);
        } else {
          keep.push(io);
        }
      }
      keep.splice_to(ring.starved);
    }
    io_uring_sqe* sqe = get_sqe(ring);
    io_uring_prep_cancel_fd(sqe, sc->sock, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, kIgnore);
  }

  void cancel_accepts() override {
    accepts_cancelled_.store(true);
    // Shutting a listening socket down fails its pending accepts (EINVAL).
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    for (int r = 0; r < n_; ++r) kick(rings_[r]);
  }

  int notify_fd() const override { return caller_ ? rings_[0].cq_efd : -1; }
  void ack_notify() override {
    uint64_t v;
    ssize_t r = ::read(rings_[0].cq_efd, &v, sizeof v);
    (void)r;
  }
  void renotify() override {
    uint64_t one = 1;
    ssize_t w = ::write(rings_[0].cq_efd, &one, sizeof one);
    (void)w;
  }
  // Deferred completions do not always signal the registered eventfd: under connect/reset
  // churn some wait for the driver's next io_uring_enter with nothing to say so (seen on
  // 6.18; the kernel does not tell userspace). The driver therefore also polls on a timer.
  int max_poll_interval_ms() const override { return deferred_ ? 5 : -1; }
  void submit() override {
    if (caller_ && current_worker() == 0) io_uring_submit(&rings_[0].ring);
  }

  size_t dequeue(int worker, Completion* out, size_t max, int timeout_ms) override {
    t_worker_ = worker;
    t_port_ = this;
    // One ring per port, driven by whichever single thread calls dequeue (not a
    // thread-local: a process may drive several ports from one thread).
    if (caller_) driver_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    if (deferred_ && !enabled_) {
      // This thread is its one issuer from now on. (liburing 2.3 declares
      // io_uring_enable_rings but does not export it.)
      ::syscall(__NR_io_uring_register, rings_[0].ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
      enabled_ = true;
    }
    const int r = worker % n_;
    Ring& ring = rings_[r];
    if (!ring.efd_armed && !caller_) arm_efd(ring);
    drain_inbox(ring, r);
    bool woken = false;
    size_t n = take_synth(ring, out, max, &woken);
    if (n || woken) {
      io_uring_submit(&ring.ring);
      return n;
    }
    io_uring_cqe* cqe = nullptr;
    if (timeout_ms < 0) {
      io_uring_submit_and_wait(&ring.ring, 1);
    } else if (timeout_ms == 0) {
      // Deferred: this is where completions' kernel work runs.
      if (deferred_) io_uring_submit_and_get_events(&ring.ring);
      else io_uring_submit(&ring.ring);
    } else {
      io_uring_submit(&ring.ring);
      __kernel_timespec ts;
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = (timeout_ms % 1000) * 1000000LL;
      io_uring_wait_cqe_timeout(&ring.ring, &cqe, &ts);
    }
    io_uring_cqe* cqes[64];
    unsigned want = unsigned(max < 64 ? max : 64);
    unsigned got = io_uring_peek_batch_cqe(&ring.ring, cqes, want);
    for (unsigned i = 0; i < got; ++i) {
      uint64_t ud = io_uring_cqe_get_data64(cqes[i]);
      int res = cqes[i]->res;
      if (ud == kIgnore) continue;
      if (ud == kNudge) {
        arm_efd(ring);
        continue;
      }
      if (ud == kMultiAccept) {
        if (IoContext* io = on_multishot_cqe(ring, res, (cqes[i]->flags & IORING_CQE_F_MORE) != 0))
          out[n++] = Completion{io, 0};
        continue;
      }
      IoContext* io = reinterpret_cast<IoContext*>(ud);
      switch (io->kind) {
        case OpKind::accept:
          if (res >= 0) io->accept_sock = res;
          out[n++] = Completion{io, res >= 0 ? 0 : int64_t(res)};
          break;
        case OpKind::send:
          if (on_send_cqe(ring, io, res)) out[n++] = Completion{io, res < 0 ? int64_t(res) : int64_t(io->len)};
          break;
        case OpKind::recv:
          if (io->buf == nullptr) {
            if (on_stream_cqe(ring, r, io, res, cqes[i]->flags, &out[n])) ++n;
            break;
          }
          on_recv_cqe(ring, io);
          out[n++] = Completion{io, res};
          break;
        default:
          out[n++] = Completion{io, res};
          break;
      }
    }
    io_uring_cq_advance(&ring.ring, got);
    if (!ring.starved.empty()) rearm_starved(ring);
    drain_inbox(ring, r);
    if (n < max) n += take_synth(ring, out + n, max - n, &woken);
    return n;
  }

  void wake(int worker) override {
    Ring& ring = rings_[worker % n_];
    {
      LockGuard g(ring.mu);
      ++ring.wakes;
    }
    kick(ring);
  }

 private:
  int current_worker() const {
    if (caller_) return driver_.load(std::memory_order_relaxed) == std::this_thread::get_id() ? 0 : -1;
    return t_port_ == this ? t_worker_ : -1;
  }

  // Caller-driven rings are kicked through the driver's notify fd itself: its next poll
  // drains the inbox. A read armed on efd would complete as deferred task work, and a login
  // admitted by the keeper once waited forever for the eventfd signal of that completion.
  static void kick(Ring& ring) {
    uint64_t one = 1;
    ssize_t w = ::write(ring.cq_efd >= 0 ? ring.cq_efd : ring.efd, &one, sizeof one);
    (void)w;
  }

  bool post(int r, IoContext* io) {
    Ring& ring = rings_[r];
    if (current_worker() == r) {
      drain_inbox(ring, r);  // earlier cross-thread posts go first
      prep(ring, io);
      return true;  // submitted with the next batch
    }
    bool first;
    {
      LockGuard g(ring.mu);
      first = ring.inbox.empty();
      ring.inbox.push(io);
      ring.has_inbox.store(true, std::memory_order_release);
    }
    // One wake-up per batch: a non-empty inbox already has a kick on its way, and the owner
    // takes the whole inbox when it drains.
    if (first) kick(ring);
    return true;
  }

  void drain_inbox(Ring& ring, int) {
    if (!ring.has_inbox.load(std::memory_order_acquire)) return;
    IoQueue q;
    {
      LockGuard g(ring.mu);
      ring.inbox.splice_to(q);
      ring.has_inbox.store(false, std::memory_order_relaxed);
    }
    while (IoContext* io = q.pop()) prep(ring, io);
  }

  // Owner only.
  void prep(Ring& ring, IoContext* io) {
    SocketContext* sc = static_cast<SocketContext*>(io->backend);
    switch (io->kind) {
      case OpKind::accept: {
        if (accepts_cancelled_.load() || listen_fd_ < 0) return synth(ring, io, kIoCanceled);
        if (ring.ms_supported) {
          if (ring.stash_n > 0) {
            int fd = ring.stash[0];
            memmove(ring.stash, ring.stash + 1, sizeof(int) * size_t(--ring.stash_n));
            fill_accept(io, fd);
            return synth(ring, io, 0);
          }
          ring.accept_waiters.push(io);
          if (!ring.ms_armed) arm_multishot(ring);
          return;
        }
        io->peer_addr_len = int(IoContext::kAddrRoom);
        io_uring_sqe* sqe = get_sqe(ring);
        io_uring_prep_accept(sqe, listen_fd_, reinterpret_cast<sockaddr*>(io->addr_area()),
                             reinterpret_cast<socklen_t*>(&io->peer_addr_len), SOCK_CLOEXEC);
        io_uring_sqe_set_data(sqe, io);
        return;
      }
      case OpKind::recv:
        if (sc->port.cancelled) return synth(ring, io, kIoCanceled);
        if (sc->port.recv_inflight) return sc->port.recv_q.push(io);
        sc->port.recv_inflight = true;
        return prep_recv(ring, sc, io);
      case OpKind::send:
        if (sc->port.cancelled) return synth(ring, io, kIoCanceled);
        if (sc->port.send_inflight) return sc->port.send_q.push(io);
        sc->port.send_inflight = true;
        return prep_send(ring, sc, io);
      case OpKind::disconnect:
        return synth(ring, io, 0);
      case OpKind::none:
        break;
    }
  }

  static void fill_accept(IoContext* io, int fd) {
    io->accept_sock = fd;
    socklen_t sl = IoContext::kAddrRoom;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(io->addr_area()), &sl) != 0) sl = 0;
    io->peer_addr_len = int(sl);
  }

  void arm_multishot(Ring& ring) {
    io_uring_sqe* sqe = get_sqe(ring);
    io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, kMultiAccept);
    ring.ms_armed = true;
  }

  // Owner only. Returns the accept context to complete, if any.
  IoContext* on_multishot_cqe(Ring& ring, int res, bool more) {
    IoContext* done = nullptr;
    if (res >= 0) {
      ring.ms_seen = true;
      if ((done = ring.accept_waiters.pop()) != nullptr) {
        fill_accept(done, res);
      } else if (ring.stash_n < kStash) {
        ring.stash[ring.stash_n++] = res;
      } else {
        ::close(res);  // overload: more accepted than the engine takes
      }
    }
    if (more) return done;
    ring.ms_armed = false;
    if (res == -EINVAL && !ring.ms_seen) {
      // Kernel without multishot accept: single-shot from now on.
      ring.ms_supported = false;
      while (IoContext* io = ring.accept_waiters.pop()) prep(ring, io);
    } else if (accepts_cancelled_.load()) {
      while (IoContext* io = ring.accept_waiters.pop()) synth(ring, io, kIoCanceled);
      for (int k = 0; k < ring.stash_n; ++k) ::close(ring.stash[k]);
      ring.stash_n = 0;
    } else if (!ring.accept_waiters.empty()) {
      arm_multishot(ring);  // ended (e.g. EMFILE): keep the backlog alive
    }
    return done;
  }

  void prep_recv(Ring& ring, SocketContext* sc, IoContext* io) {
    io_uring_sqe* sqe = get_sqe(ring);
    if (io->buf == nullptr) {
      // Buffer-less stream (provided_): the kernel picks a buffer per chunk.
      io_uring_prep_recv_multishot(sqe, sc->sock, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 0;
    } else {
      io_uring_prep_recv(sqe, sc->sock, io->buf, io->len, 0);
    }
    io_uring_sqe_set_data(sqe, io);
  }

  void give_back(Ring& ring, uint16_t bid) {
    io_uring_buf_ring_add(ring.br, ring.bufs + size_t(bid) * buf_size_, buf_size_, bid,
                          io_uring_buf_ring_mask(ring.nbufs), 0);
    io_uring_buf_ring_advance(ring.br, 1);
    ++ring.avail;
  }

  // Owner only. Streams that hit ENOBUFS go again once a buffer is back.
  void rearm_starved(Ring& ring) {
    // At most one per free buffer: the rest would only hit ENOBUFS again.
    for (uint32_t budget = ring.avail; budget > 0; --budget) {
      IoContext* io = ring.starved.pop();
      if (!io) break;
      SocketContext* sc = static_cast<SocketContext*>(io->backend);
      sc->port.starved = false;
      if (sc->port.cancelled) {
        end_recv(ring, sc);
        synth(ring, io, kIoCanceled);
      } else {
        prep_recv(ring, sc, io);
      }
    }
  }

  // Owner only. One CQE of a buffer-less stream; true: *c is to be delivered.
  bool on_stream_cqe(Ring& ring, int r, IoContext* io, int res, unsigned flags, Completion* c) {
    SocketContext* sc = static_cast<SocketContext*>(io->backend);
    const bool more = (flags & IORING_CQE_F_MORE) != 0;
    *c = Completion{io, res};
    if (flags & IORING_CQE_F_BUFFER) {
      const uint16_t bid = uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
      --ring.avail;
      if (res > 0) {
        c->data = ring.bufs + size_t(bid) * buf_size_;
        c->buf_id = (uint32_t(r) << 16) | bid;
      } else {
        give_back(ring, bid);  // nothing in it
      }
    }
    c->more = more;
    if (more) return c->data != nullptr;
    if (res == -ENOBUFS && !sc->port.cancelled) {
      // Ring empty: the data is still in the socket. The op stays posted.
      sc->port.starved = true;
      ring.starved.push(io);
      return false;
    }
    end_recv(ring, sc);
    return true;
  }

  // Owner only: the socket's recv finished; start its next queued one.
  void end_recv(Ring& ring, SocketContext* sc) {
    if (IoContext* next = sc->port.recv_q.pop()) {
      prep_recv(ring, sc, next);
    } else {
      sc->port.recv_inflight = false;
    }
  }

  // Owner only: start the socket's next queued recv.
  void on_recv_cqe(Ring& ring, IoContext* io) {
    end_recv(ring, static_cast<SocketContext*>(io->backend));
  }

  void prep_send(Ring& ring, SocketContext* sc, IoContext* io) {
    io_uring_sqe* sqe = get_sqe(ring);
    io_uring_prep_send(sqe, sc->sock, io->buf + io->off, io->len - io->off, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, io);
  }

  static io_uring_sqe* get_sqe(Ring& ring) {
    io_uring_sqe* sqe;
    while ((sqe = io_uring_get_sqe(&ring.ring)) == nullptr) io_uring_submit(&ring.ring);
    return sqe;
  }

  static void arm_efd(Ring& ring) {
    io_uring_sqe* sqe = get_sqe(ring);
    io_uring_prep_read(sqe, ring.efd, &ring.efd_buf, sizeof ring.efd_buf, 0);
    io_uring_sqe_set_data64(sqe, kNudge);
    ring.efd_armed = true;
  }

  static void synth(Ring& ring, IoContext* io, int64_t res) {
    io->result = res;
    ring.synth.push(io);
  }

  // Owner only. true when the send op is finished.
  bool on_send_cqe(Ring& ring, IoContext* io, int res) {
    SocketContext* sc = static_cast<SocketContext*>(io->backend);
    if (res > 0 && io->off + uint32_t(res) < io->len && !sc->port.cancelled) {
      io->off += uint32_t(res);  // short send: finish it before the next one
      prep_send(ring, sc, io);
      return false;
    }
    if (res > 0) io->off = io->len;
    if (IoContext* next = sc->port.send_q.pop()) {
      prep_send(ring, sc, next);
    } else {
      sc->port.send_inflight = false;
    }
    return true;
  }

  size_t take_synth(Ring& ring, Completion* out, size_t max, bool* woken) {
    size_t n = 0;
    while (n < max && !ring.synth.empty()) {
      IoContext* io = ring.synth.pop();
      out[n++] = Completion{io, io->result};
    }
    if (n == 0) {
      LockGuard g(ring.mu);
      if (ring.wakes > 0) {
        --ring.wakes;
        *woken = true;
      }
    }
    return n;
  }

  int n_ = 0;
  std::unique_ptr<Ring[]> rings_;
  int listen_fd_ = -1;  // set before workers start, closed in the destructor
  bool provided_ = false;   // set in open(), read-only afterwards
  bool caller_ = false;     // set in open(): one ring, driven by the thread that dequeues
  bool deferred_ = false;   // set in open(): DEFER_TASKRUN, enabled by the driver
  bool enabled_ = false;    // driver only
  std::atomic<std::thread::id> driver_{};
  uint32_t buf_size_ = 0;   // bytes per provided buffer
  std::atomic<bool> accepts_cancelled_{false};
  std::atomic<uint32_t> next_ring_{0};
  static thread_local int t_worker_;
  static thread_local const UringPort* t_port_;
};

thread_local int UringPort::t_worker_ = -1;
thread_local const UringPort* UringPort::t_port_ = nullptr;

}  // namespace

std::unique_ptr<Port> make_uring_port() { return std::unique_ptr<Port>(new UringPort()); }

}  // namespace iocpgen
#endif  // IOCPGEN_HAVE_URING

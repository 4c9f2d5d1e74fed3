// The N-API bridge between the engine and the TypeScript runtime.
//
// Native -> JS: completions append events (open, frame, close) to one queue, and JS gets
// everything queued as a single Buffer. Two ways to drive the engine:
// - JS thread (option jsThreadIo, Linux): no I/O threads. libuv watches the engine's notify
//   fd; when it is readable the JS thread runs the completions itself and calls JS right
//   after, then hands the kernel the sends JS made. Nothing crosses threads on this path.
// - Worker threads (Windows, or jsThreadIo false): workers append, and one thread-safe
//   function call wakes JS. A full queue makes workers wait before re-posting their
//   connection's receive: backpressure, not growth.
// Events appended by other threads (the keeper's closes and admissions) always go the
// thread-safe way. JS -> native: the runtime batches a tick's sends into one call.
// No native lock is held while JS runs: the queue lock is held only to append or swap.
// The addon is the same for every spec: the runtime hands it the spec's settings and
// message table as options. Records and options are declared once, in bridge.json.
#include <napi.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bridge.h"
#include "engine.h"

#ifndef _WIN32
// libuv, reached through the symbols Node exports: N-API cannot watch a descriptor. Declared
// here because N-API builds ship no uv.h. The handle's size comes from libuv at run time
// (uv_handle_size), and `data` is every handle's first field; both are stable across 1.x.
extern "C" {
struct uv_loop_s;
struct uv_handle_s;
struct uv_poll_s;
size_t uv_handle_size(int type);
int uv_poll_init(uv_loop_s* loop, uv_poll_s* handle, int fd);
int uv_poll_start(uv_poll_s* handle, int events, void (*cb)(uv_poll_s*, int status, int events));
int uv_poll_stop(uv_poll_s* handle);
struct uv_timer_s;
int uv_timer_init(uv_loop_s* loop, uv_timer_s* handle);
int uv_timer_start(uv_timer_s* handle, void (*cb)(uv_timer_s*), uint64_t timeout, uint64_t repeat);
int uv_timer_stop(uv_timer_s* handle);
void uv_close(uv_handle_s* handle, void (*cb)(uv_handle_s*));
void uv_unref(uv_handle_s* handle);
}
#endif

namespace iocpgen {
namespace {

#ifndef _WIN32
constexpr int kUvPoll = 8;      // UV_POLL of uv_handle_type
constexpr int kUvReadable = 1;  // UV_READABLE
constexpr int kUvTimer = 13;    // UV_TIMER
#endif

using bridge::EventKind;
namespace event = bridge::event;

// The event queue's bytes: growth leaves new bytes uninitialized (each event is written in
// full right after; zero-filling first only doubled the memory traffic), and the block is
// handed to JS as is.
class Bytes {
 public:
  Bytes() = default;
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  Bytes(Bytes&& o) noexcept { swap(o); }
  ~Bytes() { std::free(p_); }

  void swap(Bytes& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(size_, o.size_);
    std::swap(cap_, o.cap_);
  }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  void reserve(size_t n) {
    if (n <= cap_) return;
    auto* q = static_cast<uint8_t*>(std::realloc(p_, n));
    if (!q) throw std::bad_alloc();
    p_ = q;
    cap_ = n;
  }
  // Room for n more bytes at the end; returns where they go.
  uint8_t* append(size_t n) {
    if (size_ + n > cap_) reserve(std::max(cap_ * 2, size_ + n));
    uint8_t* at = p_ + size_;
    size_ += n;
    return at;
  }
  // Hands the block over (free it with std::free) and leaves this empty.
  uint8_t* release() {
    uint8_t* p = p_;
    p_ = nullptr;
    size_ = cap_ = 0;
    return p;
  }

 private:
  uint8_t* p_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};
constexpr size_t kEventHeader = event::kSize;

class EventQueue final : public FrameSink {
 public:
  EventQueue(size_t limit, std::function<void()> notify)
      : limit_(limit), notify_(std::move(notify)), js_thread_(std::this_thread::get_id()) {}

  void on_open(Handle conn, const char* peer, uint16_t peer_port) override {
    const uint32_t n = uint32_t(std::strlen(peer));
    append(kEventHeader + n, [&](uint8_t* p) {
      header(p, EventKind::open, 0, peer_port, conn, n);
      std::memcpy(p + kEventHeader, peer, n);
    });
  }

  void on_frames(const FrameView* frames, size_t count) override {
    size_t bytes = 0;
    for (size_t i = 0; i < count; ++i) bytes += kEventHeader + frames[i].len;
    append(bytes, [&](uint8_t* p) {
      for (size_t i = 0; i < count; ++i) {
        const FrameView& f = frames[i];
        header(p, EventKind::frame, 0, f.type, f.conn, f.len);
        std::memcpy(p + kEventHeader, f.payload, f.len);
        p += kEventHeader + f.len;
      }
    });
  }

  void on_close(Handle conn, CloseReason reason) override {
    append(kEventHeader, [&](uint8_t* p) { header(p, EventKind::close, uint8_t(reason), 0, conn, 0); });
  }

  // JS thread: everything queued so far.
  Bytes take() {
    Bytes out;
    // The next batch starts with room for one like the last (allocated outside the lock),
    // so workers rarely regrow and copy it.
    Bytes next;
    next.reserve(reserve_);
    {
      LockGuard g(mu_);
      out.swap(q_);
      q_.swap(next);
    }
    room_.notify_all();
    reserve_ = std::min<size_t>(out.size(), kMaxReserve);
    return out;
  }

  // JS thread: while set, its own appends wake nobody (it delivers them itself next).
  void set_driving(bool on) { driving_ = on; }

  // From now on nobody waits for room (shutdown: JS may no longer drain).
  void unblock() {
    {
      LockGuard g(mu_);
      unbounded_ = true;
    }
    room_.notify_all();
  }

  uint64_t backpressure_waits() {
    LockGuard g(mu_);
    return waits_;
  }

 private:
  static void header(uint8_t* p, EventKind kind, uint8_t reason, uint16_t type, Handle h, uint32_t len) {
    p[event::kKind] = uint8_t(kind);
    p[event::kReason] = reason;
    put16(p + event::kType, type);
    put32(p + event::kIndex, h.index);
    put32(p + event::kGen, h.gen);
    put32(p + event::kLen, len);
  }
  static void put16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); }
  static void put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }

  template <class Fill>
  void append(size_t bytes, Fill fill) {
    bool was_empty;
    {
      std::unique_lock<RankedMutex> lk(mu_);
      // Wait for room only when there is something queued: one oversized batch always fits.
      // The JS thread never waits (a close it starts may finish on it): it makes the room.
      while (!unbounded_ && !q_.empty() && q_.size() + bytes > limit_ && std::this_thread::get_id() != js_thread_) {
        ++waits_;
        room_.wait(lk);
      }
      was_empty = q_.empty();
      fill(q_.append(bytes));
    }
    if (was_empty && !(driving_ && std::this_thread::get_id() == js_thread_)) notify_();
  }

  static constexpr size_t kMaxReserve = 256 * 1024;
  const size_t limit_;
  size_t reserve_ = 0;  // JS thread only
  std::function<void()> notify_;
  const std::thread::id js_thread_;
  RankedMutex mu_{LockRank::bridge};
  std::condition_variable_any room_;
  Bytes q_;
  bool unbounded_ = false;
  uint64_t waits_ = 0;
  bool driving_ = false;  // JS thread only
};

uint32_t get32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

class NativeServer final : public Napi::ObjectWrap<NativeServer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeServer",
                       {InstanceMethod<&NativeServer::Start>("start"), InstanceMethod<&NativeServer::Send>("send"),
                        InstanceMethod<&NativeServer::Close>("close"),
                        InstanceMethod<&NativeServer::Stats>("stats"), InstanceMethod<&NativeServer::Options>("options"),
                        InstanceMethod<&NativeServer::Stop>("stop")});
  }

  // new NativeServer(options, onEvents): options are bridge.json's; a missing one keeps
  // EngineConfig's default, a wrong one throws.
  explicit NativeServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeServer>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "new NativeServer(options, onEvents)").ThrowAsJavaScriptException();
      return;
    }
    if (!bridge::read_options(info[0].As<Napi::Object>(), cfg_, addon_)) return;
#ifdef _WIN32
    cfg_.caller_driven = false;  // IOCP completions are dequeued by worker threads
#endif
    if (cfg_.workers == 0) {
      const unsigned cores = std::thread::hardware_concurrency();
      cfg_.workers = int(cores ? cores : 2);
    }
    const size_t limit = addon_.event_queue_limit;

    on_events_ = Napi::Persistent(info[1].As<Napi::Function>());
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "iocpgen events", 0, 1);
    tsfn_.Unref(env);  // start() makes the running server keep the process alive
    queue_ = std::make_shared<EventQueue>(limit, [this] { Schedule(); });
    engine_ = std::make_unique<Engine>(cfg_, queue_.get());
  }

  ~NativeServer() override {
    if (engine_) Shutdown();
  }

 private:
  // Any thread. Each call carries its own reference to the queue, so a delivery still
  // pending when this object goes away touches nothing freed.
  void Schedule() {
    auto* q = new std::shared_ptr<EventQueue>(queue_);
    if (tsfn_.NonBlockingCall(q, &NativeServer::Deliver) != napi_ok) delete q;
  }

  // JS thread: hand every queued event to JS as one Buffer (no copy).
  static void Deliver(Napi::Env env, Napi::Function fn, std::shared_ptr<EventQueue>* ref) {
    std::shared_ptr<EventQueue> q = std::move(*ref);
    delete ref;
    if (!env) return;
    Bytes events = q->take();
    if (events.empty()) return;
    const size_t n = events.size();
    auto buf = Napi::Buffer<uint8_t>::New(env, events.release(), n, [](Napi::Env, uint8_t* p) { std::free(p); });
    lockcheck::assert_no_locks_held();
    fn.Call({buf});
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string why;
    if (!engine_->start(&why)) {
      Napi::Error::New(env, "cannot start: " + why).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    running_ = true;
    tsfn_.Ref(env);
    if (cfg_.caller_driven && !WatchEngine(env)) return env.Undefined();
    Napi::Object r = Napi::Object::New(env);
    r.Set("port", engine_->port());
    r.Set("backend", engine_->backend_name());
    return r;
  }

#ifndef _WIN32
  // Caller-driven: libuv wakes the JS thread when the engine has completions. The handle is
  // unreferenced: the thread-safe function's reference alone keeps a running server alive.
  bool WatchEngine(Napi::Env env) {
    uv_loop_s* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return Fail(env, "no libuv loop");
    poll_ = static_cast<uv_poll_s*>(std::calloc(1, uv_handle_size(kUvPoll)));
    if (!poll_) return Fail(env, "out of memory");
    *reinterpret_cast<NativeServer**>(poll_) = this;  // handle->data
    if (uv_poll_init(loop, poll_, engine_->notify_fd()) != 0) {
      std::free(poll_);
      poll_ = nullptr;
      return Fail(env, "uv_poll_init failed");
    }
    uv_poll_start(poll_, kUvReadable, [](uv_poll_s* h, int, int) { (*reinterpret_cast<NativeServer**>(h))->Drive(); });
    uv_unref(reinterpret_cast<uv_handle_s*>(poll_));
    // Some engines must also be polled on a timer (Engine::max_poll_interval_ms).
    const int every = engine_->max_poll_interval_ms();
    if (every > 0) {
      timer_ = static_cast<uv_timer_s*>(std::calloc(1, uv_handle_size(kUvTimer)));
      if (!timer_) return Fail(env, "out of memory");
      *reinterpret_cast<NativeServer**>(timer_) = this;
      uv_timer_init(loop, timer_);
      uv_timer_start(timer_, [](uv_timer_s* h) { (*reinterpret_cast<NativeServer**>(h))->Drive(); }, uint64_t(every), uint64_t(every));
      uv_unref(reinterpret_cast<uv_handle_s*>(timer_));
    }
    async_ = std::make_unique<Napi::AsyncContext>(env, "iocpgen:io");
    return true;
  }

  void Unwatch() {
    if (timer_) {
      uv_timer_stop(timer_);
      uv_close(reinterpret_cast<uv_handle_s*>(timer_), [](uv_handle_s* h) { std::free(h); });
      timer_ = nullptr;
    }
    if (!poll_) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_s*>(poll_), [](uv_handle_s* h) { std::free(h); });
    poll_ = nullptr;
  }

  // JS thread, from libuv: run the engine's completions, hand JS their events, then submit
  // what JS sent. A bounded number of rounds, so timers and other I/O get their turn; the
  // engine keeps its fd readable when it stopped with work left.
  void Drive() {
    static constexpr size_t kBudget = 256;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (int round = 0; round < 8 && !stopped_; ++round) {
      queue_->set_driving(true);
      const size_t n = engine_->poll(kBudget);
      queue_->set_driving(false);
      DeliverNow(env);
      if (stopped_) return;
      engine_->submit();
      if (n < kBudget) return;
    }
  }

  void DeliverNow(Napi::Env env) {
    Bytes events = queue_->take();
    if (events.empty()) return;
    const size_t n = events.size();
    auto buf = Napi::Buffer<uint8_t>::New(env, events.release(), n, [](Napi::Env, uint8_t* p) { std::free(p); });
    lockcheck::assert_no_locks_held();
    on_events_.MakeCallback(env.Global(), {buf}, *async_);
    // Nothing on the stack would catch it: report it as Node reports any uncaught error.
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }

  bool Fail(Napi::Env env, const std::string& why) {
    Napi::Error::New(env, "cannot watch the engine: " + why).ThrowAsJavaScriptException();
    return false;
  }
#else
  bool WatchEngine(Napi::Env) { return true; }
  void Unwatch() {}
#endif

  // Caller-driven: what this call posted goes to the kernel now, not at the next wake-up.
  void Submit() {
    if (cfg_.caller_driven && !stopped_) engine_->submit();
  }

  // send(batch): a tick's sends, as bridge.json's send records. Corked per connection: the
  // frames of one connection, its broadcasts included, go to the engine in one send_parts
  // call (one lock, and one socket send when they fit a buffer), in the order JS sent
  // them; connections come in the order they first appear. A broadcast's frame is not
  // copied here: each member's part points at the one encoding. Returns how many frames
  // were not accepted (stale session, closing, queue full).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsBuffer()) return Napi::Number::New(env, 0);
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    const uint8_t* p = buf.Data();
    const uint8_t* end = p + buf.Length();
    namespace rec = bridge::send;
    namespace hrec = bridge::handle;
    cork_.clear();
    uint32_t seq = 0;
    while (size_t(end - p) >= rec::kSize) {
      const uint32_t index = get32(p + rec::kIndex);
      const uint32_t gen = get32(p + rec::kGen);
      const uint32_t len = get32(p + rec::kLen);
      p += rec::kSize;
      if (index != bridge::kBroadcastMark) {
        if (uint32_t(end - p) < len) break;
        cork_.push_back(Corked{Handle{index, gen}, seq++, Engine::Part{p, len}});
        p += len;
        continue;
      }
      const uint32_t count = gen;
      const size_t handles = size_t(count) * hrec::kSize;
      if (size_t(end - p) < handles || size_t(end - p) - handles < len) break;
      const uint8_t* frame = p + handles;
      for (uint32_t i = 0; i < count; ++i, p += hrec::kSize)
        cork_.push_back(Corked{Handle{get32(p + hrec::kIndex), get32(p + hrec::kGen)}, seq++, Engine::Part{frame, len}});
      p = frame + len;
    }
    // Stable grouping by connection: sorted by handle, then by the order sent.
    std::sort(cork_.begin(), cork_.end(), [](const Corked& a, const Corked& b) {
      if (a.conn.index != b.conn.index) return a.conn.index < b.conn.index;
      if (a.conn.gen != b.conn.gen) return a.conn.gen < b.conn.gen;
      return a.seq < b.seq;
    });
    uint32_t rejected = 0;
    for (size_t i = 0; i < cork_.size();) {
      size_t j = i;
      parts_.clear();
      for (; j < cork_.size() && cork_[j].conn == cork_[i].conn; ++j) parts_.push_back(cork_[j].part);
      if (!engine_->send_parts(cork_[i].conn, parts_.data(), parts_.size(), uint32_t(parts_.size()))) rejected += uint32_t(parts_.size());
      i = j;
    }
    Submit();
    return Napi::Number::New(env, rejected);
  }

  // close(index, gen, reason?): reason is an index into closeReasons; the application may
  // only give its own reasons, anything else is a plain local_close.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    const Handle h{info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value()};
    CloseReason why = CloseReason::local_close;
    if (info.Length() > 2 && info[2].IsNumber()) {
      const auto r = CloseReason(info[2].As<Napi::Number>().Uint32Value());
      if (r == CloseReason::bad_payload || r == CloseReason::handler_error) why = r;
    }
    const bool closing = engine_->close(h, why);
    Submit();
    return Napi::Boolean::New(info.Env(), closing);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const EngineStats s = engine_->stats();
    Napi::Object r = Napi::Object::New(env);
    r.Set("backend", engine_->backend_name());
    bridge::write_stats(env, r, s);
    r.Set("backpressureWaits", double(queue_->backpressure_waits()));
    r.Set("ioThreads", cfg_.caller_driven ? 0 : cfg_.workers);
    Napi::Object closes = Napi::Object::New(env);
    for (size_t i = 1; i < size_t(CloseReason::count_); ++i) closes.Set(close_reason_name(CloseReason(i)), double(s.closes[i]));
    r.Set("closes", closes);
    return r;
  }

  // The settings in effect (after defaults), under the names of the options.
  Napi::Value Options(const Napi::CallbackInfo& info) { return bridge::options_object(info.Env(), cfg_, addon_); }

  // Graceful stop: the engine closes every client and waits for every operation. Events
  // queued meanwhile (the closes) are still delivered.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (!engine_ || stopped_) return;
    stopped_ = true;
    queue_->unblock();
    Unwatch();  // before the engine closes the fd; a caller-driven stop runs its completions
    engine_->stop();
    // Deliver what the shutdown queued (the closes), then let the process exit.
    if (running_) Schedule();
    tsfn_.Release();
  }

  EngineConfig cfg_;
  bridge::AddonOptions addon_;
  struct Corked {
    Handle conn;
    uint32_t seq;  // order within the batch
    Engine::Part part;
  };
  std::vector<Corked> cork_;         // Send's scratch (JS thread only)
  std::vector<Engine::Part> parts_;  // one connection's parts, for send_parts
  Napi::FunctionReference on_events_;
  Napi::ThreadSafeFunction tsfn_;
#ifndef _WIN32
  uv_poll_s* poll_ = nullptr;
  uv_timer_s* timer_ = nullptr;
  std::unique_ptr<Napi::AsyncContext> async_;
#endif
  std::shared_ptr<EventQueue> queue_;
  std::unique_ptr<Engine> engine_;
  bool running_ = false;
  bool stopped_ = false;
};

}  // namespace
}  // namespace iocpgen

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeServer", iocpgen::NativeServer::Define(env));
  exports.Set("bridge", iocpgen::bridge::kHash);
  exports.Set("closeReasons", [&] {
    Napi::Array a = Napi::Array::New(env);
    for (size_t i = 0; i < size_t(iocpgen::CloseReason::count_); ++i) a.Set(uint32_t(i), iocpgen::close_reason_name(iocpgen::CloseReason(i)));
    return a;
  }());
  return exports;
}

NODE_API_MODULE(iocpgen, Init)

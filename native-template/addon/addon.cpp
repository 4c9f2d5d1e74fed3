// The N-API bridge between the engine and the TypeScript runtime.
//
// Native -> JS: worker threads append events (open, frame, close) to one queue; one
// thread-safe function call hands everything queued to JS as a single Buffer. A full queue
// makes workers wait before re-posting their connection's receive: backpressure, not growth.
// JS -> native: the runtime batches a tick's sends into one Buffer and one call.
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

namespace iocpgen {
namespace {

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
    if (was_empty) notify_();
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
};

uint32_t get32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

class NativeServer final : public Napi::ObjectWrap<NativeServer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeServer",
                       {InstanceMethod<&NativeServer::Start>("start"), InstanceMethod<&NativeServer::Send>("send"),
                        InstanceMethod<&NativeServer::Broadcast>("broadcast"), InstanceMethod<&NativeServer::Close>("close"),
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
    if (cfg_.workers == 0) {
      const unsigned cores = std::thread::hardware_concurrency();
      cfg_.workers = int(cores ? cores : 2);
    }
    const size_t limit = addon_.event_queue_limit;

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
    Napi::Object r = Napi::Object::New(env);
    r.Set("port", engine_->port());
    r.Set("backend", engine_->backend_name());
    return r;
  }

  // send(batch): records of u32 index, u32 gen, u32 len, then a whole frame of len bytes.
  // Consecutive records for one connection go to the engine as one call: one lock, and
  // usually one socket send for all of a batch's replies to that client.
  // Returns how many frames were not accepted (stale session, closing, queue full).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsBuffer()) return Napi::Number::New(env, 0);
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    const uint8_t* p = buf.Data();
    const uint8_t* end = p + buf.Length();
    uint32_t rejected = 0;
    Handle run{};
    parts_.clear();
    auto flush = [&] {
      if (!parts_.empty() && !engine_->send_parts(run, parts_.data(), parts_.size(), uint32_t(parts_.size()))) rejected += uint32_t(parts_.size());
      parts_.clear();
    };
    namespace rec = bridge::send;
    while (size_t(end - p) >= rec::kSize) {
      const Handle h{get32(p + rec::kIndex), get32(p + rec::kGen)};
      const uint32_t len = get32(p + rec::kLen);
      p += rec::kSize;
      if (uint32_t(end - p) < len) break;
      if (!parts_.empty() && h != run) flush();
      run = h;
      parts_.push_back(Engine::Part{p, len});
      p += len;
    }
    flush();
    return Napi::Number::New(env, rejected);
  }

  // broadcast(handles, frame): handles are u32 index, u32 gen pairs; the frame is encoded
  // once by JS and queued here for each connection. Returns how many accepted it.
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsBuffer() || !info[1].IsBuffer()) return Napi::Number::New(env, 0);
    auto handles = info[0].As<Napi::Buffer<uint8_t>>();
    auto frame = info[1].As<Napi::Buffer<uint8_t>>();
    uint32_t ok = 0;
    namespace rec = bridge::handle;
    for (size_t i = 0; i + rec::kSize <= handles.Length(); i += rec::kSize) {
      const Handle h{get32(handles.Data() + i + rec::kIndex), get32(handles.Data() + i + rec::kGen)};
      if (engine_->send(h, frame.Data(), frame.Length(), 1)) ++ok;
    }
    return Napi::Number::New(env, ok);
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
    return Napi::Boolean::New(info.Env(), engine_->close(h, why));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const EngineStats s = engine_->stats();
    Napi::Object r = Napi::Object::New(env);
    r.Set("backend", engine_->backend_name());
    bridge::write_stats(env, r, s);
    r.Set("backpressureWaits", double(queue_->backpressure_waits()));
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
    engine_->stop();
    // Deliver what the shutdown queued (the closes), then let the process exit.
    if (running_) Schedule();
    tsfn_.Release();
  }

  EngineConfig cfg_;
  bridge::AddonOptions addon_;
  std::vector<Engine::Part> parts_;  // Send's scratch (JS thread only)
  Napi::ThreadSafeFunction tsfn_;
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

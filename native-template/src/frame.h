// Wire format: u32 LE length L (type id + payload), u16 LE type id, payload.
// Whole frame = 4 + L bytes. FrameDecoder accepts arbitrary chunks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "config.h"

namespace iocpgen {

constexpr uint32_t kFrameHeader = 6;

enum class FrameError : uint8_t { none, too_large, too_short, unknown_type, bad_length };
const char* frame_error_name(FrameError e);

// O(1) lookup of per-type payload bounds, shared read-only by all decoders.
class MessageTable {
 public:
  explicit MessageTable(const std::vector<MessageSpec>& specs);
  // false when the type id is unknown.
  bool lookup(uint16_t type, uint32_t* min_payload, uint32_t* max_payload) const {
    const Entry& e = entries_[type];
    if (!e.known) return false;
    *min_payload = e.min_payload;
    *max_payload = e.max_payload;
    return true;
  }

 private:
  struct Entry {
    uint32_t min_payload = 0;
    uint32_t max_payload = 0;
    bool known = false;
  };
  std::unique_ptr<Entry[]> entries_;
};

// Receives decoded frames. Payload pointers stay valid until flush() returns;
// the decoder calls flush() before it overwrites its reassembly buffer.
class FrameHandler {
 public:
  virtual void frame(uint16_t type, const uint8_t* payload, uint32_t len) = 0;
  virtual void flush() = 0;

 protected:
  ~FrameHandler() = default;
};

class FrameDecoder {
 public:
  FrameDecoder() = default;
  void init(uint32_t max_frame, const MessageTable* table);
  // Forgets a partial frame and frees the reassembly buffer.
  void reset();
  // Decodes as much as possible. Returns the first error; frames before it
  // were already delivered. After an error the decoder must be reset.
  FrameError feed(const uint8_t* data, size_t len, FrameHandler& out);
  size_t buffered() const { return have_; }

 private:
  FrameError check_length(const uint8_t* hdr) const;
  FrameError check_header(const uint8_t* hdr, uint32_t* total) const;

  // Only a frame split across reads needs buf_, sized to that frame; a connection
  // between frames holds none, so idle connections cost no reassembly memory.
  void reserve(uint32_t n);
  static constexpr uint32_t kMinReassembly = 256;

  std::unique_ptr<uint8_t[]> buf_;
  uint32_t cap_ = 0;
  uint32_t max_frame_ = 0;
  uint32_t have_ = 0;  // bytes of a partial frame in buf_
  const MessageTable* table_ = nullptr;
};

// Appends one frame to out; returns its size.
size_t encode_frame(std::vector<uint8_t>& out, uint16_t type, const void* payload, uint32_t len);
// Writes one frame into dst (capacity cap); returns bytes written or 0 if it does not fit.
size_t encode_frame_to(uint8_t* dst, size_t cap, uint16_t type, const void* payload, uint32_t len);

inline uint32_t load_u32le(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint16_t load_u16le(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }

}  // namespace iocpgen

#include "frame.h"

#include <cstring>

namespace iocpgen {

const char* frame_error_name(FrameError e) {
  switch (e) {
    case FrameError::none: return "none";
    case FrameError::too_large: return "too_large";
    case FrameError::too_short: return "too_short";
    case FrameError::unknown_type: return "unknown_type";
    case FrameError::bad_length: return "bad_length";
  }
  return "?";
}

MessageTable::MessageTable(const std::vector<MessageSpec>& specs) : entries_(new Entry[65536]) {
  for (const MessageSpec& s : specs) {
    Entry& e = entries_[s.type];
    e.known = true;
    e.min_payload = s.min_payload;
    e.max_payload = s.max_payload;
  }
}

void FrameDecoder::init(uint32_t max_frame, const MessageTable* table) {
  if (max_frame < kFrameHeader) max_frame = kFrameHeader;
  max_frame_ = max_frame;
  table_ = table;
  reset();
}

void FrameDecoder::reset() {
  have_ = 0;
  buf_.reset();
  cap_ = 0;
}

// Room for n bytes of a partial frame (n <= max_frame), keeping what is there.
void FrameDecoder::reserve(uint32_t n) {
  if (n <= cap_) return;
  if (n < kMinReassembly) n = kMinReassembly < max_frame_ ? kMinReassembly : max_frame_;
  std::unique_ptr<uint8_t[]> nb(new uint8_t[n]);
  if (have_) memcpy(nb.get(), buf_.get(), have_);
  buf_ = std::move(nb);
  cap_ = n;
}

// Length checks need only the 4-byte prefix, so a bad length is reported
// before the type id arrives.
FrameError FrameDecoder::check_length(const uint8_t* hdr) const {
  uint32_t l = load_u32le(hdr);
  if (l < 2) return FrameError::too_short;
  if (l > max_frame_ - 4) return FrameError::too_large;  // 4+L > max_frame, no overflow
  return FrameError::none;
}

// Validates a complete 6-byte header; *total = whole frame size.
FrameError FrameDecoder::check_header(const uint8_t* hdr, uint32_t* total) const {
  FrameError e = check_length(hdr);
  if (e != FrameError::none) return e;
  uint32_t l = load_u32le(hdr);
  uint16_t type = load_u16le(hdr + 4);
  uint32_t mn = 0, mx = 0;
  if (!table_ || !table_->lookup(type, &mn, &mx)) return FrameError::unknown_type;
  uint32_t payload = l - 2;
  if (payload < mn || payload > mx) return FrameError::bad_length;
  *total = l + 4;
  return FrameError::none;
}

FrameError FrameDecoder::feed(const uint8_t* data, size_t len, FrameHandler& out) {
  size_t pos = 0;
  // 1. Finish a frame that is being reassembled in buf_.
  if (have_ > 0) {
    if (have_ < kFrameHeader) {
      size_t take = kFrameHeader - have_;
      if (take > len) take = len;
      memcpy(buf_.get() + have_, data, take);
      have_ += (uint32_t)take;
      pos += take;
      if (have_ < kFrameHeader) return have_ >= 4 ? check_length(buf_.get()) : FrameError::none;
    }
    uint32_t total = 0;
    FrameError e = check_header(buf_.get(), &total);
    if (e != FrameError::none) return e;
    reserve(total);
    size_t take = total - have_;
    if (take > len - pos) take = len - pos;
    memcpy(buf_.get() + have_, data + pos, take);
    have_ += (uint32_t)take;
    pos += take;
    if (have_ < total) return FrameError::none;
    out.frame(load_u16le(buf_.get() + 4), buf_.get() + kFrameHeader, total - kFrameHeader);
    have_ = 0;
    if (cap_ > kMinReassembly) {
      out.flush();   // the payload lives in buf_
      buf_.reset();  // a large frame's buffer is not kept for an idle connection
      cap_ = 0;
    }
  }
  // 2. Whole frames straight from the caller's chunk (no copy).
  FrameError err = FrameError::none;
  while (len - pos >= 4) {
    uint32_t total = 0;
    err = len - pos >= kFrameHeader ? check_header(data + pos, &total) : check_length(data + pos);
    if (err != FrameError::none || len - pos < kFrameHeader || len - pos < total) break;
    out.frame(load_u16le(data + pos + 4), data + pos + kFrameHeader, total - kFrameHeader);
    pos += total;
  }
  // 3. Frames emitted from buf_ must be consumed before buf_ is reused.
  out.flush();
  if (err != FrameError::none) return err;
  if (pos < len) {
    size_t rest = len - pos;
    // rest < total <= max_frame (header checked) or rest < 6.
    uint32_t need = rest >= kFrameHeader ? load_u32le(data + pos) + 4 : uint32_t(kFrameHeader);
    reserve(need);
    memcpy(buf_.get(), data + pos, rest);
    have_ = (uint32_t)rest;
  }
  return FrameError::none;
}

size_t encode_frame_to(uint8_t* dst, size_t cap, uint16_t type, const void* payload, uint32_t len) {
  size_t total = size_t(len) + kFrameHeader;
  if (total > cap) return 0;
  uint32_t l = len + 2;
  dst[0] = uint8_t(l);
  dst[1] = uint8_t(l >> 8);
  dst[2] = uint8_t(l >> 16);
  dst[3] = uint8_t(l >> 24);
  dst[4] = uint8_t(type);
  dst[5] = uint8_t(type >> 8);
  if (len) memcpy(dst + kFrameHeader, payload, len);
  return total;
}

size_t encode_frame(std::vector<uint8_t>& out, uint16_t type, const void* payload, uint32_t len) {
  size_t at = out.size();
  out.resize(at + kFrameHeader + len);
  return encode_frame_to(out.data() + at, kFrameHeader + len, type, payload, len);
}

}  // namespace iocpgen

// libFuzzer target for FrameDecoder. The input is split into chunks at
// fuzzer-chosen points; invariants:
//  - decoding never reads out of bounds (ASan),
//  - the frames emitted, re-encoded, equal a prefix of the input,
//  - chunking does not change the result (compared with one-shot decoding),
//  - an error is only reported for bytes that really are invalid.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../src/frame.h"

using namespace iocpgen;

namespace {

struct Out : FrameHandler {
  std::vector<uint8_t> reencoded;
  size_t frames = 0;
  void frame(uint16_t type, const uint8_t* p, uint32_t n) override {
    // Touch every payload byte so ASan sees any bad span.
    encode_frame(reencoded, type, p, n);
    ++frames;
  }
  void flush() override {}
};

const std::vector<MessageSpec>& specs() {
  static const std::vector<MessageSpec> s = {{1, 0, 200}, {2, 4, 8}, {3, 0, 0}, {0xffff, 1, 300}};
  return s;
}

void fail(const char* what) {
  fprintf(stderr, "invariant violated: %s\n", what);
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MessageTable table(specs());
  if (size < 2) return 0;
  // First byte picks max_frame, second the chunk size pattern.
  const uint32_t max_frame = 6 + uint32_t(data[0]) * 2;
  const size_t step = size_t(data[1] % 17) + 1;
  data += 2;
  size -= 2;

  FrameDecoder whole;
  whole.init(max_frame, &table);
  Out a;
  FrameError ea = whole.feed(data, size, a);

  FrameDecoder chunked;
  chunked.init(max_frame, &table);
  Out b;
  FrameError eb = FrameError::none;
  for (size_t pos = 0; pos < size && eb == FrameError::none;) {
    size_t n = size - pos < step ? size - pos : step;
    // Copy into an exact-size heap block so over-reads trip ASan.
    std::vector<uint8_t> chunk(data + pos, data + pos + n);
    eb = chunked.feed(chunk.data(), chunk.size(), b);
    pos += n;
  }
  auto is_prefix = [&](const std::vector<uint8_t>& v) {
    return v.size() <= size && (v.empty() || memcmp(v.data(), data, v.size()) == 0);
  };
  if (!is_prefix(a.reencoded)) fail("one-shot frames are not a prefix of the input");
  if (!is_prefix(b.reencoded)) fail("chunked frames are not a prefix of the input");
  if (ea != eb) fail("chunking changed the error");
  if (a.reencoded != b.reencoded) fail("chunking changed the frames");
  if (ea == FrameError::none && size - a.reencoded.size() != whole.buffered())
    fail("unconsumed bytes were not buffered");
  if (ea != FrameError::none) {
    // The next header after the good frames must really be bad.
    size_t at = a.reencoded.size();
    if (size - at < 4) fail("error reported without a length prefix");
    uint32_t l = load_u32le(data + at);
    bool bad = l < 2 || l > max_frame - 4;
    if (!bad) {
      if (size - at < 6) fail("type error without a type id");
      uint32_t mn, mx;
      uint16_t type = load_u16le(data + at + 4);
      bad = !table.lookup(type, &mn, &mx) || l - 2 < mn || l - 2 > mx;
    }
    if (!bad) fail("error reported for a valid header");
  }
  return 0;
}

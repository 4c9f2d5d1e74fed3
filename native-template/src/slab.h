// The I/O buffers' memory: zeroed pages straight from the OS, touched only when a buffer is
// first used. A server sized for many connections starts small and grows with its load;
// zero-filling the slab up front would make every page resident at start. discard() hands
// pages of unused buffers back, so a burst's memory does not stay resident for good.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#ifdef _WIN32
#include "net.h"  // Windows headers in the order winsock needs
#else
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace iocpgen {

class BufferSlab {
 public:
  explicit BufferSlab(size_t bytes) : bytes_(bytes ? bytes : 1) {
#ifdef _WIN32
    // Committed demand-zero pages: charged to the commit limit, resident only once written.
    data_ = static_cast<uint8_t*>(VirtualAlloc(nullptr, bytes_, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
#else
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
#endif
    if (!data_) throw std::bad_alloc();
  }
  ~BufferSlab() {
#ifdef _WIN32
    VirtualFree(data_, 0, MEM_RELEASE);
#else
    munmap(data_, bytes_);
#endif
  }
  BufferSlab(const BufferSlab&) = delete;
  BufferSlab& operator=(const BufferSlab&) = delete;

  uint8_t* data() const { return data_; }

  // The whole pages within [offset, offset + len) lose their contents and go back to the
  // OS; the next touch gets a zeroed page. No one may use those bytes meanwhile. Returns
  // the bytes released: those that were resident (Linux), or the bytes reset (Windows).
  size_t discard(size_t offset, size_t len) {
    const size_t page = page_size();
    const size_t lo = (offset + page - 1) / page * page;
    const size_t hi = (offset + len) / page * page;
    if (hi <= lo) return 0;
#ifdef _WIN32
    // MEM_RESET: the contents need not be kept, so they are never written to the page
    // file (a decommit could fail to recommit). VirtualUnlock on pages that are not locked
    // takes them out of the working set now; it reports "not locked", as expected.
    if (!VirtualAlloc(data_ + lo, hi - lo, MEM_RESET, PAGE_READWRITE)) return 0;
    VirtualUnlock(data_ + lo, hi - lo);
    return hi - lo;
#else
    const size_t was = resident(lo, hi - lo);
    // DONTNEED, not FREE: the pages leave the process's RSS now, not under pressure.
    return madvise(data_ + lo, hi - lo, MADV_DONTNEED) == 0 ? was : 0;
#endif
  }

  // Bytes of the slab now resident (0 where the OS cannot tell cheaply).
  size_t resident_bytes() const { return resident(0, bytes_); }

  static size_t page_size() {
#ifdef _WIN32
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize;
#else
    static const size_t page = size_t(sysconf(_SC_PAGESIZE));
    return page;
#endif
  }

 private:
  size_t resident(size_t offset, size_t len) const {
#ifdef _WIN32
    (void)offset;
    (void)len;
    return 0;
#else
    const size_t page = page_size();
    std::vector<unsigned char> v((len + page - 1) / page);
    if (v.empty() || mincore(data_ + offset, len, v.data()) != 0) return 0;
    size_t n = 0;
    for (unsigned char c : v) n += c & 1u;
    return n * page;
#endif
  }

  size_t bytes_;
  uint8_t* data_ = nullptr;
};

}  // namespace iocpgen

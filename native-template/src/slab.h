// The I/O buffers' memory: zeroed pages straight from the OS, touched only when a buffer is
// first used. A server sized for many connections starts small and grows with its load;
// zero-filling the slab up front would make every page resident at start.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>

#ifdef _WIN32
#include "net.h"  // Windows headers in the order winsock needs
#else
#include <sys/mman.h>
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

 private:
  size_t bytes_;
  uint8_t* data_ = nullptr;
};

}  // namespace iocpgen

// The native tests' harness, shared by core_test and the IOCP port test. CHECK fails the
// running test and returns from it; run_tests runs each named test (IOCPGEN_TEST_ONLY picks
// one, IOCPGEN_TEST_REPEAT repeats the list), prints "PASS name (ms)" or "FAIL ...", then
// "<suite>: N passed, M failed", and returns the exit code.
#pragma once
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace iocpgen {
namespace testing {

inline int& failures_in_test() {
  static int n = 0;
  return n;
}

struct Test {
  std::string name;
  std::function<void()> fn;
};

inline int run_tests(const char* suite, const std::vector<Test>& tests) {
  const char* only = std::getenv("IOCPGEN_TEST_ONLY");
  const int repeat = std::getenv("IOCPGEN_TEST_REPEAT") ? std::atoi(std::getenv("IOCPGEN_TEST_REPEAT")) : 1;
  int passed = 0, failed = 0;
  for (int rep = 0; rep < repeat; ++rep) {
    for (const Test& t : tests) {
      if (only && t.name != only) continue;
      failures_in_test() = 0;
      const auto t0 = std::chrono::steady_clock::now();
      t.fn();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      const bool ok = failures_in_test() == 0;
      std::printf("%s %s (%.0f ms)\n", ok ? "PASS" : "FAIL", t.name.c_str(), ms);
      std::fflush(stdout);
      (ok ? passed : failed)++;
    }
  }
  std::printf("%s: %d passed, %d failed\n", suite, passed, failed);
  return failed ? 1 : 0;
}

}  // namespace testing
}  // namespace iocpgen

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "  check failed %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      ++::iocpgen::testing::failures_in_test();                                  \
      return;                                                                    \
    }                                                                            \
  } while (0)

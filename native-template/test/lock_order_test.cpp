// A deliberately mis-ordered build: each case takes locks against the declared order in a
// child process, which the debug checker must abort with a report naming both sites.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "../src/lock.h"

using iocpgen::LockGuard;
using iocpgen::LockRank;
using iocpgen::RankedMutex;

namespace {

// Runs body in a child; returns true when the child aborted and its stderr contains `want`.
template <class Body>
bool aborts_with(Body body, const char* want, std::string* got) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    body();
    _exit(0);  // no abort: the checker missed it
  }
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) got->append(buf, size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && got->find(want) != std::string::npos;
}

int passed = 0, failed = 0;

template <class Body>
void expect_abort(const char* name, Body body, const char* want) {
  std::string got;
  const bool ok = aborts_with(body, want, &got);
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", name);
  if (!ok) std::printf("  wanted \"%s\", child wrote: %s\n", want, got.c_str());
  (ok ? passed : failed)++;
}

}  // namespace

int main() {
  expect_abort("engine taken under socket (against engine < socket)", [] {
    RankedMutex socket(LockRank::socket), engine(LockRank::engine);
    LockGuard a(socket);
    LockGuard b(engine);
  }, "lock order violation: taking engine at test/lock_order_test.cpp:");

  expect_abort("the report names where the held lock was taken", [] {
    RankedMutex socket(LockRank::socket), engine(LockRank::engine);
    LockGuard a(socket);
    LockGuard b(engine);
  }, "while holding socket (taken at test/lock_order_test.cpp:");

  expect_abort("anything under the bridge lock (sinks hold no core lock)", [] {
    RankedMutex socket(LockRank::socket), bridge(LockRank::bridge);
    LockGuard a(socket);
    LockGuard b(bridge);
  }, "taking bridge");

  expect_abort("the same lock class twice", [] {
    RankedMutex a(LockRank::socket), b(LockRank::socket);
    LockGuard x(a);
    LockGuard y(b);
  }, "taking socket");

  expect_abort("a call into JavaScript with a lock held", [] {
    RankedMutex pool(LockRank::pool);
    LockGuard a(pool);
    iocpgen::lockcheck::assert_no_locks_held();
  }, "calling into JavaScript at test/lock_order_test.cpp:");

  // And the declared order itself passes.
  {
    RankedMutex engine(LockRank::engine), socket(LockRank::socket), ps(LockRank::port_socket), pq(LockRank::port_queue);
    LockGuard a(engine);
    LockGuard b(socket);
    LockGuard c(ps);
    LockGuard d(pq);
    std::printf("PASS the declared chain engine < socket < port_socket < port_queue\n");
    ++passed;
  }
  std::printf("lockcheck: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

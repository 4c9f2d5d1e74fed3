// Backend selection: config, then IOCPGEN_BACKEND, then the best available.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "port.h"

namespace iocpgen {

static BackendChoice choice_from_env(BackendChoice configured) {
  if (configured != BackendChoice::automatic) return configured;
  const char* env = getenv("IOCPGEN_BACKEND");
  if (!env || !*env) return BackendChoice::automatic;
  if (!strcmp(env, "epoll")) return BackendChoice::epoll;
  if (!strcmp(env, "uring")) return BackendChoice::uring;
  if (!strcmp(env, "iocp")) return BackendChoice::iocp;
  fprintf(stderr, "iocpgen: ignoring unknown IOCPGEN_BACKEND=%s\n", env);
  return BackendChoice::automatic;
}

static std::unique_ptr<Port> open_port(std::unique_ptr<Port> p, const EngineConfig& cfg, std::string* why) {
  if (p && !p->open(cfg, why)) p.reset();
  return p;
}

std::unique_ptr<Port> make_port(const EngineConfig& cfg, std::string* why_chosen) {
  BackendChoice c = choice_from_env(cfg.backend);
  std::string why;
  std::unique_ptr<Port> p;
  std::string reason;
#ifdef _WIN32
  if (c != BackendChoice::automatic && c != BackendChoice::iocp) reason = "only iocp exists on Windows; ";
  p = open_port(make_iocp_port(), cfg, &why);
  reason += p ? "iocp" : "iocp failed: " + why;
#else
  if (c == BackendChoice::iocp) reason = "iocp is Windows only; ";
#ifdef IOCPGEN_HAVE_URING
  if (c == BackendChoice::automatic || c == BackendChoice::uring || c == BackendChoice::iocp) {
    p = open_port(make_uring_port(), cfg, &why);
    if (p) {
      reason += c == BackendChoice::uring ? "uring (requested)" : "uring (available)";
    } else {
      // seccomp, old kernel, memlock limits: fall back, say why.
      reason += "uring unavailable (" + why + "), falling back to epoll";
    }
  } else {
    reason += "epoll (requested)";
  }
#else
  if (c == BackendChoice::uring) reason += "uring requested but not compiled in; ";
  reason += "epoll";
#endif
  if (!p) {
    p = open_port(make_epoll_port(), cfg, &why);
    if (!p) reason += "; epoll failed: " + why;
  }
#endif
  if (why_chosen) *why_chosen = reason;
  return p;
}

}  // namespace iocpgen

#!/usr/bin/env bash
# Installs the system tools the test suite runs (Debian; needs root for apt-get).
# Each need is checked by what the suite runs (a command, a library pkg-config finds, a
# sanitizer runtime clang links), never by a package name: a machine may have the tool from
# elsewhere, and a package may not provide the command (wine64 does not put `wine` on PATH).
set -euo pipefail

# need "<check>" <debian packages...>: install the packages when the check fails.
missing=()
need() {
  local check=$1; shift
  if ! bash -c "$check" >/dev/null 2>&1; then
    echo "ci: missing ($check): will install $*"
    missing+=("$@")
  fi
}
need 'command -v g++ && command -v make'                 g++ make
# node-gyp (the runtime's source-build test) runs Python.
need 'command -v python3'                                  python3
need 'command -v pkg-config && pkg-config --exists liburing' pkg-config liburing-dev
need 'command -v x86_64-w64-mingw32-g++-posix'             g++-mingw-w64-x86-64-posix
need 'command -v wine'                                     wine wine64
need 'command -v clang++ && command -v llvm-symbolizer'    clang llvm
# The cluster tests start their own NATS server (JetStream on).
need 'command -v nats-server'                              nats-server
# The generated C# client's tests compile it with mcs and run it with mono.
need 'command -v mcs && command -v mono'                   mono-mcs mono-runtime
# TSan and ASan runtimes: clang links them only when libclang-rt is present.
need 'command -v clang++ && echo "int main(){}" | clang++ -x c++ -fsanitize=thread -o /tmp/ci-tsan-probe -' libclang-rt-14-dev

if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Re-check: a package that installed but did not bring the command is a CI failure here,
  # not a confusing test failure later.
  for c in g++ make python3 pkg-config x86_64-w64-mingw32-g++-posix wine clang++ llvm-symbolizer nats-server mcs mono; do
    command -v "$c" >/dev/null || { echo "ci: $c still missing after install" >&2; exit 1; }
  done
fi


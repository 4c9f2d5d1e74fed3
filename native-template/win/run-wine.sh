#!/usr/bin/env bash
# Run a cross-built Windows program under Wine and report its exit code.
#
#   win/run-wine.sh path/to/program.exe [args...]
#
# Rules that matter for a reliable run:
#   * WINEDEBUG=-all keeps Wine's own chatter off the output;
#   * a private WINEPREFIX (default: <native-template>/build/wineprefix) is
#     initialised once and then reused, because the first boot is slow;
#   * the program's stdout goes to a FILE (not a pipe), which is printed
#     afterwards; stderr is captured the same way.
#
# If Wine is not installed the run fails: a test that cannot run is not a pass.
#
# Environment:
#   WINEPREFIX          override the prefix location
#   WINE                wine binary to use (default: wine, then wine64)
#   WINE_TIMEOUT        seconds before the run is killed (default 900)
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

if [ $# -lt 1 ]; then
  echo "usage: $0 program.exe [args...]" >&2
  exit 2
fi
exe="$1"
shift
if [ ! -f "$exe" ]; then
  echo "run-wine: no such program: $exe" >&2
  exit 2
fi

wine_bin="${WINE:-}"
if [ -z "$wine_bin" ]; then
  for cand in wine wine64; do
    if command -v "$cand" >/dev/null 2>&1; then
      wine_bin="$cand"
      break
    fi
  done
fi
if [ -z "$wine_bin" ] || ! command -v "$wine_bin" >/dev/null 2>&1; then
  echo "run-wine: wine is not installed; cannot run $(basename "$exe") (Debian: apt-get install wine wine64)" >&2
  exit 1
fi

export WINEDEBUG=-all
export WINEPREFIX="${WINEPREFIX:-$root/build/wineprefix}"
# No Mono/Gecko installer prompts during the first boot.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"

if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "run-wine: initialising Wine prefix $WINEPREFIX (one-time)..."
  mkdir -p "$WINEPREFIX"
  "$wine_bin" wineboot -i >"$WINEPREFIX.boot.log" 2>&1 || {
    echo "run-wine: wineboot failed, see $WINEPREFIX.boot.log" >&2
    exit 1
  }
fi

outdir="$(dirname "$exe")"
base="$(basename "$exe" .exe)"
out="$outdir/$base.stdout.txt"
err="$outdir/$base.stderr.txt"
: >"$out"
: >"$err"

timeout_s="${WINE_TIMEOUT:-900}"
if command -v timeout >/dev/null 2>&1; then
  timeout --kill-after=10 "$timeout_s" "$wine_bin" "$exe" "$@" \
    >"$out" 2>"$err" </dev/null
  rc=$?
else
  "$wine_bin" "$exe" "$@" >"$out" 2>"$err" </dev/null
  rc=$?
fi

# Windows programs write CRLF; strip the CR for readable logs.
tr -d '\r' <"$out"
if [ -s "$err" ]; then
  echo "---- stderr ($err) ----"
  tr -d '\r' <"$err" | tail -n 50
fi
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  echo "run-wine: $(basename "$exe") TIMED OUT after ${timeout_s}s" >&2
fi
exit $rc

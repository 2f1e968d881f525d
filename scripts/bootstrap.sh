# Shared set-up for ./fer and ./test: system packages, then a Release build when sources changed.
# Sourced (not run) so it can stop the caller with a clear message.

FERSHARP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# TorchSharp 0.107 lets a temporary Scalar object die while libtorch still reads its native copy; a garbage
# collection started by another thread can then free it mid-call (a failed or wrong operation). Without JIT
# optimization every argument stays alive to the end of its method, which closes that window; the cost is
# within noise because the time is spent in libtorch (docs/decisions/0003-torchsharp-scalar-lifetime.md).
# Only programs that run libtorch need it: recognition (predict, video, serve) runs on ONNX Runtime with the
# optimizing JIT. A user's own setting wins; DOTNET_JITMinOpts=0 measures the optimizing JIT.
# libtorch allocates and frees activation buffers of several MB on every batch; glibc's default hands
# them back to the kernel each time (mmap/munmap, page faults). Keeping them in the heap cut system time
# by two thirds and sped up training here (docs/decisions/0004-glibc-malloc-tunables.md). Recognition does
# not need it, and its 256 MB top pad only adds to a server's resident memory. A user's own setting wins;
# GLIBC_TUNABLES= (empty) measures the glibc default.
fersharp_torch_jit() {
  export DOTNET_JITMinOpts="${DOTNET_JITMinOpts-1}"
  export GLIBC_TUNABLES="${GLIBC_TUNABLES-glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=268435456}"
}

fersharp_say() { printf '%s\n' "fer-setup: $*" >&2; }

# The Debian/Ubuntu packages a fresh machine may lack. libgtk-3-0 is renamed libgtk-3-0t64 on Ubuntu 24.04+.
fersharp_missing_packages() {
  local missing=() pkg
  # No pipe into `grep -q` here: grep exits at the first match, ldconfig then dies of SIGPIPE, and under
  # `set -o pipefail` an installed library reads as missing (seen in about 1 run of 10).
  local libraries
  libraries="$(ldconfig -p 2>/dev/null || true)"
  if [[ "$libraries" != *libgtk-3.so.0* ]]; then
    if apt-cache show libgtk-3-0t64 >/dev/null 2>&1 && ! apt-cache show libgtk-3-0 >/dev/null 2>&1; then
      missing+=(libgtk-3-0t64)
    else
      missing+=(libgtk-3-0)
    fi
  fi
  [ -f /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml ] || missing+=(opencv-data)
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  printf '%s\n' "${missing[@]}"
}

# Usage: fersharp_ensure_packages [extra-package ...]
fersharp_ensure_packages() {
  local missing
  mapfile -t missing < <(fersharp_missing_packages "$@" | sed '/^$/d')
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    fersharp_say "missing system packages: ${missing[*]}"
    fersharp_say "install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  fersharp_say "installing ${missing[*]} (first run only)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || { fersharp_say "apt-get update failed"; exit 1; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { fersharp_say "apt-get install ${missing[*]} failed"; exit 1; }
}

fersharp_ensure_dotnet() {
  if ! command -v dotnet >/dev/null 2>&1; then
    fersharp_say "the .NET 10 SDK is not installed; see https://learn.microsoft.com/dotnet/core/install/linux-debian"
    exit 1
  fi
  case "$(dotnet --version 2>/dev/null)" in
    10.*|1[1-9].*) ;;
    *) fersharp_say ".NET SDK 10 or newer is needed (found $(dotnet --version 2>/dev/null))"; exit 1 ;;
  esac
}

# Builds the CLI in Release when any source, project or model file is newer than the last build.
fersharp_build_cli() {
  local stamp="$FERSHARP_ROOT/src/FerSharp.Cli/bin/Release/.fersharp-build-stamp"
  local dll="$FERSHARP_ROOT/src/FerSharp.Cli/bin/Release/net10.0/fer.dll"
  if [ -f "$stamp" ] && [ -f "$dll" ] && [ -z "$(cd "$FERSHARP_ROOT" && find src build Directory.Build.props Directory.Build.targets \
        \( -name bin -o -name obj \) -prune -o -type f -newer "$stamp" -print -quit)" ]; then
    return 0
  fi
  fersharp_say "building FerSharp (Release)…"
  if ! (cd "$FERSHARP_ROOT" && dotnet build src/FerSharp.Cli/FerSharp.Cli.csproj -c Release -nologo -v quiet -clp:"ErrorsOnly;NoSummary" >&2); then
    fersharp_say "build failed"
    exit 1
  fi
  touch "$stamp"
}

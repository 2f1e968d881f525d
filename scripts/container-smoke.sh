#!/usr/bin/env bash
# Builds the deploy/Dockerfile image with podman on a machine that cannot pull base images, runs it as the
# Dockerfile says (non-root, read-only root filesystem), and smoke-tests it: health, one recognition, the
# user, the read-only filesystem. Prints the image's size. Run as root on Debian 12.
#   scripts/container-smoke.sh
#
# What differs from `docker build -f deploy/Dockerfile .` and why:
# - The base is Debian bookworm made by debootstrap, with libgtk-3-0 and curl installed as the Dockerfile's
#   runtime stage installs them, plus this machine's .NET and ASP.NET runtimes, instead of the aspnet:10.0 image.
# - fer is published here as the Dockerfile's build stage does (-p:FerSharpRecognitionOnly=true), not in an
#   SDK image.
# The runtime stage itself (user, environment, health check, entry point) is taken from deploy/Dockerfile.
# podman runs with runc and explicit ulimits: crun cannot set this machine's default limits ("setrlimit
# RLIMIT_NPROC: Operation not permitted") or use its hybrid cgroups.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/bootstrap.sh"
fersharp_ensure_dotnet
fersharp_ensure_packages podman runc debootstrap

work="$(mktemp -d)"
container=""
cleanup() {
  [ -n "$container" ] && podman "${runtime[@]}" rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
runtime=(--runtime runc)
limits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
# The runtime stage's packages, read from the Dockerfile so the two cannot differ; the base is tagged by them.
packages="$(sed -n 's/.*apt-get install -y --no-install-recommends \([^\\]*\).*/\1/p' "$root/deploy/Dockerfile" | xargs)"
[ -n "$packages" ] || { fersharp_say "no apt-get install line found in deploy/Dockerfile"; exit 1; }
base="localhost/fersharp-base:bookworm-$(printf '%s' "$packages" | sha256sum | cut -c1-12)"
image=localhost/fersharp:smoke
port=18080

if ! podman image exists "$base"; then
  fersharp_say "building the base image from Debian packages (debootstrap, a few minutes)"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # What the Dockerfile's runtime stage installs, the same way (no recommends: those pull in dconf, whose
  # set-up fails in a chroot).
  cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
  mount -t proc proc "$work/rootfs/proc"
  chroot "$work/rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends '"$packages"' ca-certificates && rm -rf /var/lib/apt/lists/*' \
    >"$work/apt.log" 2>&1 || { umount "$work/rootfs/proc"; tail -20 "$work/apt.log" >&2; exit 1; }
  umount "$work/rootfs/proc"
  tar -C "$work/rootfs" -c . | podman import - "$base" >/dev/null
  rm -rf "$work/rootfs"
fi

fersharp_say "publishing fer (recognition only)"
mkdir -p "$work/context"
dotnet publish "$root/src/FerSharp.Cli/FerSharp.Cli.csproj" -c Release -r linux-x64 --self-contained false -o "$work/context/app" \
  --artifacts-path "$work/artifacts" -p:FerSharpRecognitionOnly=true -nologo -v quiet
mkdir -p "$work/context/dotnet/shared" "$work/context/dotnet/host"
cp -a /usr/share/dotnet/dotnet "$work/context/dotnet/"
cp -a /usr/share/dotnet/host/fxr "$work/context/dotnet/host/"
cp -a /usr/share/dotnet/shared/Microsoft.NETCore.App /usr/share/dotnet/shared/Microsoft.AspNetCore.App "$work/context/dotnet/shared/"
cp "$root/deploy/entrypoint.sh" "$work/context/entrypoint.sh"

# The Dockerfile's runtime stage on the local base: its apt-get step is done by debootstrap above.
{
  echo "FROM $base"
  echo "COPY dotnet /usr/share/dotnet"
  echo "RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet"
  sed -n '/^FROM mcr.microsoft.com\/dotnet\/aspnet/,$p' "$root/deploy/Dockerfile" \
    | sed -e '1d' -e '/^RUN apt-get update/,/rm -rf \/var\/lib\/apt\/lists/d' -e '/^# OpenCV.s native library/d' \
          -e 's#^COPY --from=build /app /app#COPY app /app#' -e '/^# OpenCV.s native library/,/^# is for the health check/d' -e 's#^COPY deploy/entrypoint.sh #COPY entrypoint.sh #'
} >"$work/context/Containerfile"
fersharp_say "building $image"
podman "${runtime[@]}" build --format docker "${limits[@]}" -q -f "$work/context/Containerfile" -t "$image" "$work/context" >/dev/null

fersharp_say "running it read-only as the image's user"
container="$(podman "${runtime[@]}" run -d "${limits[@]}" --network host --read-only --tmpfs /tmp \
  -e FERSHARP_URLS="http://127.0.0.1:$port" -e FERSHARP_API_KEY=smoke-test-key-0123456789 "$image")"
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { podman logs "$container" >&2; fersharp_say "health check failed"; exit 1; }
echo "health: ok"

photo="$work/photo.jpg"
data="$(dirname "$root")/shared/data/fer2013/fer2013.csv.gz"
if [ -f "$data" ]; then
  dotnet "$work/context/app/fer.dll" data scenes "$data" "$work/scenes" --count 1 >/dev/null
  mapfile -t scenes < <(find "$work/scenes" -name '*scene*.jpg')
  cp "${scenes[0]}" "$photo"
  expect_face=1
else
  # Without the shared data: a plain grey picture; the answer then has no face but is still a recognition.
  fersharp_say "no FER2013 data beside the repository: recognizing a blank picture"
  photo="$work/photo.png"
  python3 -c 'import struct,sys,zlib
w=h=160; raw=b"".join(b"\x00"+bytes([128])*w for _ in range(h))
chunk=lambda t,d: struct.pack(">I",len(d))+t+d+struct.pack(">I",zlib.crc32(t+d))
sys.stdout.buffer.write(b"\x89PNG\r\n\x1a\n"+chunk(b"IHDR",struct.pack(">IIBBBBB",w,h,8,0,0,0,0))+chunk(b"IDAT",zlib.compress(raw))+chunk(b"IEND",b""))' >"$photo"
  expect_face=0
fi
answer="$(curl -fsS -H 'X-API-Key: smoke-test-key-0123456789' -F "image=@$photo" "http://127.0.0.1:$port/api/v1/recognize")"
echo "recognition: $answer" | cut -c1-200
case "$answer" in
  *'"faces":['*) ;;
  *) fersharp_say "the recognition did not answer with faces"; exit 1 ;;
esac
if [ "$expect_face" = 1 ] && [[ "$answer" != *'"emotion"'* ]]; then fersharp_say "no face recognized in the scene photo"; exit 1; fi

user="$(podman "${runtime[@]}" exec "$container" id -u)"
echo "user id: $user"
[ "$user" != 0 ] || { fersharp_say "the server runs as root"; exit 1; }
if podman "${runtime[@]}" exec "$container" sh -c 'touch /app/written 2>/dev/null'; then
  fersharp_say "the root filesystem is writable"; exit 1
fi
echo "root filesystem: read-only"
libtorch="$(podman "${runtime[@]}" exec "$container" sh -c 'ls /app | grep -c "^libtorch" || true')"
echo "libtorch libraries in the image: $libtorch"
[ "$libtorch" = 0 ] || { fersharp_say "libtorch is in the recognition-only image"; exit 1; }
size="$(podman image inspect --format '{{.Size}}' "$image")"
base_size="$(podman image inspect --format '{{.Size}}' "$base")"
echo "image size: $((size / 1000000)) MB ($image), of which the base (Debian with the Dockerfile's packages) $((base_size / 1000000)) MB"
podman "${runtime[@]}" stop -t 30 "$container" >/dev/null
echo "stopped: exit code $(podman inspect --format '{{.State.ExitCode}}' "$container")"

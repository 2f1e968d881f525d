#!/usr/bin/env bash
# Draws README's example of `fer predict --annotate`: FER2013 faces pasted into generated scenes, annotated by
# the shipped default model, into docs/images/ (not committed: images taken from FER2013 stay out of the
# repository). Needs ../shared/data/fer2013/fer2013.csv.gz beside the repository.
#   scripts/readme-picture.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$(dirname "$root")/shared/data/fer2013/fer2013.csv.gz"
[ -f "$data" ] || { echo "readme-picture: $data not found" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$root/fer" data scenes "$data" "$work/scenes" --count 12 >/dev/null
mkdir -p "$work/pick"
mapfile -t scenes < <(find "$work/scenes" -name '*-scene.jpg' | sort)
for f in "${scenes[@]:0:6}"; do cp "$f" "$work/pick/$(basename "$(dirname "$f")")-$(basename "$f")"; done
mkdir -p "$root/docs/images"
"$root/fer" predict "$work/pick" --annotate "$root/docs/images/examples" --format csv --out "$work/faces.csv" >/dev/null
echo "annotated examples in docs/images/examples/ (the file names start with the true label):"
ls "$root/docs/images/examples"

#!/usr/bin/env bash
# Draws README's picture, docs/images/predict-example.png: `fer predict --annotate` with the shipped default
# model on a scene of FER2013's average happy, surprise and neutral faces (`fer data average-faces`, each the
# mean of thousands of training faces). No face of the dataset itself is drawn: those stay out of the
# repository (docs/decisions/0020-average-faces-picture.md). Needs ../shared/data/fer2013/fer2013.csv.gz.
#   scripts/readme-picture.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$(dirname "$root")/shared/data/fer2013/fer2013.csv.gz"
[ -f "$data" ] || { echo "readme-picture: $data not found" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$root/fer" data average-faces "$data" "$work/averages" --classes happy,surprise,neutral
"$root/fer" predict "$work/averages/scene.png" --annotate "$work/annotated"
mkdir -p "$root/docs/images"
cp "$work/annotated/scene.png" "$root/docs/images/predict-example.png.tmp"
mv "$root/docs/images/predict-example.png.tmp" "$root/docs/images/predict-example.png"
echo "wrote docs/images/predict-example.png"

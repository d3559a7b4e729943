#!/usr/bin/env bash
# What users install, checked as they use it: build the sdist and wheel, `twine check --strict` them,
# install the wheel with [serve,search,mteb] into a fresh virtual environment outside the checkout, and run
# the first commands of the README from an empty folder (so nothing can come from the checkout or its
# configs/). Called by .ci/run after `make test`; locally: `make wheel-check`.
#
#   PYTHON       the interpreter of the fresh environment (default: python3)
#   BUILD_PYTHON an environment with `build` and `twine` (default: .venv/bin/python, the test extra's)
#   TORCH_SPEC   installed before the wheel (default: torch==2.13.0, the CPU build on this disk)
#   JTCSE_DATA   the data directory with sts/ and unsup/ (default: ../shared/data beside the checkout)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
BUILD_PYTHON=${BUILD_PYTHON:-$REPO/.venv/bin/python}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
DATA_DIR=${JTCSE_DATA:-$REPO/../shared/data}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jtcse-wheel-check.XXXXXX")
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then kill "$SERVER_PID"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# pip's notes about this machine's extra (absent) package indexes would fill the CI log
pip_install() { "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }; }
step() { printf '\n== wheel check (%ss): %s\n' "$SECONDS" "$*"; }
fail() { echo "wheel check: FAILED: $*" >&2; exit 1; }

[[ -d "$DATA_DIR/sts" && -d "$DATA_DIR/unsup" ]] || fail "no data directory at $DATA_DIR (set JTCSE_DATA)"
DATA_DIR=$(cd "$DATA_DIR" && pwd)

step "build the sdist and the wheel"
"$BUILD_PYTHON" -m build --outdir "$WORK/dist" "$REPO" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; fail "build"; }
"$BUILD_PYTHON" -m twine check --strict "$WORK"/dist/*
WHEEL=$(ls "$WORK"/dist/jtcse-*.whl)
VERSION=$(basename "$WHEEL" | cut -d- -f2)

step "install $TORCH_SPEC, then $(basename "$WHEEL")[serve,search,mteb] into a fresh environment"
"$PYTHON" -m venv "$WORK/venv"
VENV_BIN="$WORK/venv/bin"
pip_install "$VENV_BIN/python" -m pip install -q "$TORCH_SPEC"
pip_install "$VENV_BIN/python" -m pip install -q "$WHEEL[serve,search,mteb]"

# From here on: the installed package only, in an empty folder, offline.
unset PYTHONPATH
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir "$WORK/empty"
cd "$WORK/empty"
JTCSE="$VENV_BIN/jtcse"
"$VENV_BIN/python" -c "import jtcse, sys; sys.exit(not jtcse.__file__.startswith('$WORK/venv/'))" \
    || fail "jtcse is not imported from the fresh environment"

step "jtcse --version"
[[ "$("$JTCSE" --version)" == "jtcse $VERSION" ]] || fail "jtcse --version is not jtcse $VERSION"

step "jtcse eval zero-shot --list"
"$JTCSE" eval zero-shot --list >"$WORK/zero_shot.txt"
[[ $(wc -l <"$WORK/zero_shot.txt") -gt 100 ]] || fail "zero-shot --list printed too few rows"

step "jtcse similarity --model minilm"
"$JTCSE" similarity --model minilm --device cpu "A man is playing a guitar." "Someone plays the guitar."

step "jtcse configs list / show"
"$JTCSE" configs list
"$JTCSE" configs show jtcse-bert-base >/dev/null

step "jtcse reproduce jtcse-bert on a tiny random BERT, 2 steps per stage, the packaged configs"
"$VENV_BIN/python" - "$WORK/tiny_bert" <<'EOF'
import sys

import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from jtcse.model.names import packaged_model_dir

torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained(packaged_model_dir("minilm"))
size = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64)
BertModel(BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=128, **size)).save_pretrained(
    sys.argv[1]
)
tokenizer.save_pretrained(sys.argv[1])
EOF
tiny=(--set train.batch_size=8 --set data.max_len=16 --set eval.batch_size=16 --set eval.dev_max_len=16
      --set model.num_ca_layers=2)
"$JTCSE" reproduce jtcse-bert --backbone "$WORK/tiny_bert" --max-steps 2 --data-dir "$DATA_DIR" \
    --device cpu --quiet --output-dir "$WORK/empty/reproduce" "${tiny[@]}" >"$WORK/reproduce.log"
grep -q "^# jtcse reproduce jtcse-bert" "$WORK/empty/reproduce/report.md" || fail "no reproduce report"

step "jtcse serve on 127.0.0.1: one embeddings request, then SIGTERM"
"$JTCSE" serve --model minilm --device cpu --host 127.0.0.1 --port 0 2>"$WORK/serve.log" &
SERVER_PID=$!
"$VENV_BIN/python" - "$WORK/serve.log" "$SERVER_PID" <<'EOF'
import json
import os
import re
import sys
import time
import urllib.request

log, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 180
url = None
while url is None:
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", open(log, encoding="utf-8").read())
    url = match.group(1) if match else None
    if time.monotonic() > deadline or not os.path.exists(f"/proc/{pid}"):
        sys.exit(f"the server did not start:\n{open(log, encoding='utf-8').read()}")
    time.sleep(0.2)
while True:  # listening comes before the model is loaded: /health says when it is ready
    try:
        if urllib.request.urlopen(f"{url}/health", timeout=5).status == 200:
            break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
body = json.dumps({"model": "minilm", "input": ["a first sentence", "a second one"]}).encode()
request = urllib.request.Request(f"{url}/v1/embeddings", body, {"content-type": "application/json"})
reply = json.load(urllib.request.urlopen(request, timeout=60))
vectors = [item["embedding"] for item in reply["data"]]
assert len(vectors) == 2 and len(vectors[0]) == 384, reply
print(f"{url}/v1/embeddings: 2 vectors of {len(vectors[0])}")
EOF
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "jtcse serve exited with $? after SIGTERM"
SERVER_PID=""

step "passed"

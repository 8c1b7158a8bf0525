#!/usr/bin/env bash
# Issue 23 item 5: DiffMAS, text-trained and skyline-trained on SmolLM2-135M-Instruct, lookup d1, the chat
# rendering, several seeds each, in the PyTorch companion (the engine takes 13-16 s a step and up to
# 108 s an evaluation episode on lavapipe). Each (method, seed) goes through three stages, each skipped
# when its output is complete, so a stopped script picks up where it stopped:
#   new    python -m latent_playground new: the bundle (episodes, first batches, initial adapters)
#   train  python -m latent_playground train: checkpoints every --checkpoint-every steps and on
#          SIGTERM / Ctrl-C; a stopped train resumes from its last checkpoint (train --resume),
#          bit for bit
#   eval   python -m latent_playground eval: heldout and ood, the channel's controls on heldout
# Then RESULTS/smollm2-lookup-d1-trained-<method>.json gathers each finished seed (training curve,
# gradient norms, wall seconds per stage, evaluation with controls and per-episode answers) with the
# machine and the settings; seeds not finished are listed as such.
#
#   bash bench/smollm2-trained.sh [--seeds "1 2 3"] [--methods "diffmas text-trained skyline-trained"]
#        [--steps 150] [--batch 8] [--lr 3e-4] [--eval-size 100] [--threads 1] [--checkpoint-every 10]
#        [--base DIR|ORG/NAME] [--work DIR] [--results DIR] [--estimate]
#
# Defaults are the engine's real-small preset (src/mas/presets.ts: batch 8, lr 3e-4, rank 8 on
# q,k,v,o, 4 latent steps, text budget 8, 100 evaluation episodes per split) with its 150 steps;
# evaluation seed 1, as bench/results/smollm2-zero-shot.json. --estimate prints the cost from the
# seconds measured here (MEASURED below) and runs nothing: at the defaults about 12 h on this 2-core
# machine (DiffMAS 1.4 h training + 1.4 h evaluation per seed), at 400 steps about 23 h. The base is
# .cache/models/smollm2-135m-instruct (bash scripts/make-models.sh smollm2), or a Hub id in the
# playground's or the Hugging Face cache.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="1 2 3" methods="diffmas text-trained skyline-trained" steps=150 batch=8 lr=3e-4 eval_size=100 threads=1 every=10
base=.cache/models/smollm2-135m-instruct work=.cache/smollm2-trained results=bench/results estimate=0
usage() { sed -n '15,17p' "$0" | sed 's/^# *//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift ;;
    --methods) methods=$2; shift ;;
    --steps) steps=$2; shift ;;
    --batch) batch=$2; shift ;;
    --lr) lr=$2; shift ;;
    --eval-size) eval_size=$2; shift ;;
    --threads) threads=$2; shift ;;
    --checkpoint-every) every=$2; shift ;;
    --base) base=$2; shift ;;
    --work) work=$2; shift ;;
    --results) results=$2; shift ;;
    --estimate) estimate=1 ;;
    -h|--help) usage ;;
    *) echo "unknown argument $1" >&2; usage ;;
  esac
  shift
done
for m in $methods; do
  case "$m" in diffmas|text-trained|skyline-trained) ;; *) echo "--methods: $m is not one of diffmas, text-trained, skyline-trained" >&2; exit 2 ;; esac
done
py=.cache/venv/bin/python; [ -x "$py" ] || py=python3
export PYTHONPATH=python OMP_NUM_THREADS=$threads
lp() { "$py" -m latent_playground "$@"; }
# a stage's wall seconds, appended to FILE as "stage seconds" (the results JSON carries them)
timed() { local file=$1 stage=$2 t0=$SECONDS; shift 2; "$@"; echo "$stage $((SECONDS - t0))" >>"$file"; echo "   $stage: $((SECONDS - t0)) s"; }

# Measured on this 2-core machine under a load of about 10 (2026-12-07, .cache/real/smollm2-lr.json there):
# method : seconds per training step at batch 4 : evaluation passes (heldout, ood, the channel's
# controls on heldout) : seconds per episode and pass (8 episodes per split, model loading included)
MEASURED="diffmas:16.5:7:7.1 text-trained:5.8:4:3.8 skyline-trained:2.4:2:4.1"
n_runs=$(( $(wc -w <<<"$seeds") * $(wc -w <<<"$methods") ))
if [ "$estimate" = 1 ]; then
  "$py" - "$MEASURED" "$methods" "$seeds" "$steps" "$batch" "$eval_size" <<'PY'
import sys
measured = {m: tuple(map(float, rest)) for m, *rest in (x.split(":") for x in sys.argv[1].split())}
methods, seeds, steps, batch, n = sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
total = 0.0
for meth in methods:
    sps, passes, spe = measured[meth]
    train = steps * sps * batch / 4  # a step's work grows with the batch
    ev = n * passes * spe
    total += len(seeds) * (train + ev)
    print(f"{meth}: {train / 3600:.1f} h training + {ev / 3600:.1f} h evaluation per seed, x{len(seeds)} seeds")
print(f"total about {total / 3600:.0f} h, one run at a time on this 2-core machine")
PY
  exit 0
fi

mkdir -p "$work" "$results"
echo "== $n_runs runs: $methods x seeds $seeds, $steps steps of batch $batch at lr $lr, $eval_size episodes per split; work in $work"
for m in $methods; do
  for s in $seeds; do
    run=$work/$m-seed$s trained=$work/$m-seed$s-trained ck=$work/$m-seed$s-trained-checkpoints
    if [ ! -f "$run/run.json" ]; then
      rm -rf "$run" "$run.times"
      echo "== $m seed $s: new"
      case "$m" in diffmas) extra=(--latent-steps 4) ;; text-trained) extra=(--text-budget 8) ;; *) extra=() ;; esac
      timed "$run.times" new lp new --base "$base" --out "$run" --task lookup --difficulty 1 --rendering chat --method "$m" --seed "$s" \
        --steps "$steps" --batch "$batch" --lr "$lr" --eval-size "$eval_size" --eval-seed 1 --rank 8 --alpha 16 \
        --targets q_proj,k_proj,v_proj,o_proj "${extra[@]}"
    fi
    if [ ! -f "$trained/run.json" ]; then
      if compgen -G "$ck/step-*" >/dev/null; then
        echo "== $m seed $s: train, resumed from $ck"
        timed "$run.times" train lp train --resume "$ck" --threads "$threads" --no-eval --json "$trained.train.json"
      else
        echo "== $m seed $s: train $steps steps"
        timed "$run.times" train lp train "$run" --from initial --steps "$steps" --out "$trained" --force --threads "$threads" \
          --checkpoint-every "$every" --no-eval --json "$trained.train.json"
      fi
    fi
    if [ ! -f "$trained.eval.json" ]; then
      echo "== $m seed $s: eval (heldout, ood, controls)"
      timed "$run.times" eval lp eval "$trained" --split heldout --split ood --threads "$threads" --json "$trained.eval.json.part"
      mv "$trained.eval.json.part" "$trained.eval.json"
    fi
  done
  "$py" - "$m" "$seeds" "$work" "$results" "$steps" "$batch" "$lr" "$eval_size" "$base" <<'PY'
import json, os, platform, sys
from datetime import datetime, timezone
from pathlib import Path
method, seeds, work, results = sys.argv[1], sys.argv[2].split(), Path(sys.argv[3]), Path(sys.argv[4])
steps, batch, lr, n, base = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8]), sys.argv[9]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
done, missing = [], []
for s in seeds:
    t, e = work / f"{method}-seed{s}-trained", work / f"{method}-seed{s}-trained.eval.json"
    if not (t / "run.json").is_file() or not e.is_file():
        missing.append(int(s))
        continue
    tr = json.loads((work / f"{method}-seed{s}-trained.train.json").read_text())  # train --json: the whole run's, resumed or not
    ev = json.loads(e.read_text())
    acc = {r["split"]: r["accuracy"] for r in ev["rows"]}
    times = {}
    for line in (work / f"{method}-seed{s}.times").read_text().split("\n") if (work / f"{method}-seed{s}.times").is_file() else []:
        if line.strip():
            k, v = line.split()
            times[k] = times.get(k, 0) + int(v)  # a resumed train adds its part
    done.append({"seed": int(s), "wallSeconds": times, "losses": tr["losses"], "gradNorms": tr["gradNorms"], "trainSeconds": tr["seconds"],
                 "accuracy": acc, "controls": {c["control"]: c["accuracy"] for c in ev["controls"]}, "evaluation": ev})
mean = {sp: sum(d["accuracy"][sp] for d in done) / len(done) for sp in ("heldout", "ood")} if done else None
out = {
    "what": f"{method} on SmolLM2-135M-Instruct, lookup d1, chat rendering, trained and evaluated in the PyTorch companion (issue 23 item 5)",
    "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "script": "bash bench/smollm2-trained.sh",
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "torchThreads": int(os.environ.get("OMP_NUM_THREADS", "1")), "python": platform.python_version()},
    "settings": {"base": base, "task": "lookup", "difficulty": 1, "rendering": "chat", "method": method, "steps": steps, "batch": batch, "lr": lr,
                 "rank": 8, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"], "evalSize": n, "evalSeed": 1},
    "seedsDone": [d["seed"] for d in done], "seedsMissing": missing, "meanAccuracy": mean, "seeds": done,
}
p = results / f"smollm2-lookup-d1-trained-{method}.json"
p.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {p}: seeds {out['seedsDone']} done" + (f", {missing} not yet" if missing else "") + (f"; mean heldout {mean['heldout']:.3f}, ood {mean['ood']:.3f}" if mean else ""))
PY
done

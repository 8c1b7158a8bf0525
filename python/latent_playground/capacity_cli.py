"""`python -m latent_playground capacity RUN`: capacity.py's free messages against a run's frozen receiver,
per receiver (trained, initial adapters) and init (zeros, real), with a table and a JSON report. Its own
module so that building the CLI's parser does not import torch."""
from __future__ import annotations

INITS = ("zeros", "real")
SCOPES = ("episode", "table")


def add_parser(sub) -> None:
    c = sub.add_parser("capacity", help="optimise free K/V messages per episode against the run's frozen receiver (issue 22: the channel's capacity)")
    c.add_argument("run", help="run bundle folder or zip (a latent method)")
    c.add_argument("--split", default="heldout", choices=["train", "heldout", "ood"])
    c.add_argument("--steps", type=int, default=100, help="Adam steps per batch of episodes (default 100)")
    c.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate on the free vectors (default 0.01)")
    c.add_argument("--init", default=",".join(INITS), help="comma-separated: zeros (zeros plus small noise), real (the senders' own message)")
    c.add_argument("--scope", default="episode", help="comma-separated: episode (one message per episode, scored on its query), "
                   "table (lookup: one message per episode scored on every query of its table, as a sender's must serve)")
    c.add_argument("--positions", type=int, default=None, help="optimise only the first P received positions (a narrower channel; default all)")
    c.add_argument("--noise-std", type=float, default=0.01, help="standard deviation of the noise of the zeros init (default 0.01)")
    c.add_argument("--adapters", default="trained,initial", help="comma-separated receivers: trained (the run's adapters), initial (its initial adapters)")
    c.add_argument("--episodes", type=int, default=None, help="the first N episodes of the split (default all)")
    c.add_argument("--batch", type=int, default=None, help="episodes optimised at once (default the run's batch)")
    c.add_argument("--seed", type=int, default=1, help="seed of the zeros init's noise")
    c.add_argument("--reference", help="an experiment report (npm run experiment -- --json) whose values-only bound is printed beside")
    c.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    c.add_argument("--device", default="cpu")
    c.add_argument("--json", help="write the results as JSON (atomically)")


def cmd_capacity(a) -> int:
    import json
    import os
    import platform
    import time
    from pathlib import Path

    from .agents import Team
    from .bundle import read_bundle
    from .capacity import Capacity
    from .numfmt import to_fixed
    from .tasks import make_task
    from .threads import set_threads
    from .tokenizer import load_tokenizer

    set_threads(a.threads)
    inits = [x for x in a.init.split(",") if x]
    which = [x for x in a.adapters.split(",") if x]
    for x in inits:
        if x not in INITS:
            raise ValueError(f"--init {x}: not one of {', '.join(INITS)}")
    scopes = [x for x in a.scope.split(",") if x]
    for x in scopes:
        if x not in SCOPES:
            raise ValueError(f"--scope {x}: not one of {', '.join(SCOPES)}")
    for x in which:
        if x not in ("trained", "initial"):
            raise ValueError(f"--adapters {x}: not trained or initial")
    b = read_bundle(a.run)
    try:
        if not b.adapter_keys:
            raise ValueError(f"capacity: method {b.method['name']} has no adapters")
        tk = load_tokenizer(b.base_dir, b.json["tokens"])
        task = make_task(b.config["task"], b.config["difficulty"])
        results = []
        for w in which:
            dirs = {k: b.adapter_dir(k, initial=w == "initial" or not b.json["files"]["adapters"]) for k in b.adapter_keys}
            cap = Capacity(Team(b, dirs, device=a.device), tk, batch=a.batch)
            for scope, init in [(s, i) for s in scopes for i in inits]:
                t0 = time.perf_counter()
                r = cap.run(a.split, init, a.steps, a.lr, a.noise_std, a.seed, a.episodes, scope, a.positions, log=print)
                r.update(adapters=w, seconds=time.perf_counter() - t0)
                print(f"{w} receiver, {scope} scope, {init} init: accuracy {to_fixed(r['step0']['accuracy'], 3)} -> {to_fixed(r['final']['accuracy'], 3)}, "
                      f"loss {r['step0']['loss']:.4f} -> {r['final']['loss']:.4f} ({r['seconds']:.0f} s)")
                results.append(r)
        ref = {"chance": task.chance_for(a.split)}
        if a.reference:
            vo = json.loads(Path(a.reference).read_text()).get("bounds", {}).get("valuesOnly", {}).get(a.split)
            if vo is None:
                raise ValueError(f"--reference {a.reference}: no bounds.valuesOnly.{a.split}")
            ref["valuesOnly"] = vo["accuracy"]
        # the senders' own messages at step 0 are the run's evaluation (the table scope: on each episode's own query)
        real = {r["adapters"]: r["step0"].get("ownQueryAccuracy", r["step0"]["accuracy"]) for r in results if r["init"] == "real"}
        print(f"\n{b.method['name']} on {b.config['task']} d{b.config['difficulty']}, {a.split}, {results[0]['episodes'] if results else 0} episodes, "
              f"{a.steps} Adam steps at lr {a.lr}")
        print("| receiver | scope | init | step 0 | after | own query after | every query of the table after | loss after |\n|---|---|---|---:|---:|---:|---:|---:|")
        for r in results:
            f = r["final"]
            extra = [to_fixed(f[k], 3) if k in f else "-" for k in ("ownQueryAccuracy", "tablesAllRight")]
            print(f"| {r['adapters']} | {r['scope']} | {r['init']} | {to_fixed(r['step0']['accuracy'], 3)} | {to_fixed(f['accuracy'], 3)} | "
                  f"{' | '.join(extra)} | {f['loss']:.4f} |")
        print("reference: " + ", ".join(f"{k} {to_fixed(v, 3)}" for k, v in ref.items())
              + "".join(f", the {k} run's real messages {to_fixed(v, 3)}" for k, v in real.items()))
        if a.json:
            import torch

            out = Path(a.json)
            doc = {"run": {"path": str(a.run), "method": b.method["name"], "task": b.config["task"], "difficulty": b.config["difficulty"],
                           "seed": b.config["seed"], "evalSeed": b.config.get("evalSeed"), "stepsTrained": b.json["training"]["stepsDone"],
                           "latentSteps": [p.latent_steps for p in cap.team.plan]},
                   "settings": {"split": a.split, "scopes": scopes, "positions": a.positions, "steps": a.steps, "lr": a.lr, "noiseStd": a.noise_std, "seed": a.seed,
                                "episodes": a.episodes, "batch": cap.ev.B, "optimizer": "Adam (torch defaults but lr)",
                                "loss": "teacher-forced answer cross-entropy, summed over the batch's targets"},
                   "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": a.device, "cpus": os.cpu_count(), "platform": platform.platform()},
                   "realMessageAccuracy": real, "reference": ref, "results": results}
            tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
            tmp.write_text(json.dumps(doc, indent=1) + "\n")
            os.replace(tmp, out)
        return 0
    finally:
        b.close()

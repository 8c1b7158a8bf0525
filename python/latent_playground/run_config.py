"""A run's configuration without the engine: the RunConfig defaults (src/mas/run.ts defaultRunConfig),
the methods (src/mas/methods.ts METHOD_SPECS), the named topologies (src/mas/presets.ts,
src/mas/topology.ts: preset, star, chain, two-round, single, and the URL form v1;agents;edges;final),
the checks of validateRunConfig and validateTopology with the engine's messages, and the plan (makePlan:
participants in topological order, each with its predecessors). `python -m latent_playground new`
builds a run from these; python/tests/test_new.py holds the plan to the engine's.
"""
from __future__ import annotations

import json
import re
from urllib.parse import unquote

from .bundle_safety import LIMITS, MAX_AGENTS, MAX_LATENT_STEPS
from .tasks import _SPECS, PlanAgent, make_task

METHOD_SPECS = {
    "single": ("none", None, "none", False),
    "skyline": ("none", None, "none", True),
    "single-trained": ("none", None, "all", False),
    "skyline-trained": ("none", None, "all", True),
    "text": ("text", None, "none", False),
    "text-trained": ("text", None, "all", False),
    "latentmas": ("latent", "latent", "none", False),
    "latentmas-full": ("latent", "full", "none", False),
    "diffmas": ("latent", "latent", "all", False),
    "diffmas-full": ("latent", "full", "all", False),
    "diffmas-detached": ("latent", "latent", "receiver", False),
    # Cache-to-Cache (c2c.py): the full trace through a trained fuser; no adapter, both bases frozen
    "c2c": ("latent", "full", "fuser", False),
}
PROJS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
AGENT_ID = re.compile(r"[A-Za-z0-9_]{1,16}")
DEFAULT_LATENT_STEPS = 4
TOPOLOGY_NAMES = ("preset", "star", "chain", "two-round", "single")
TASK_NAMES = tuple(_SPECS)  # tasks.py's registry: the engine's TASK_NAMES


def method_spec(name: str) -> dict:
    if name not in METHOD_SPECS:
        raise ValueError(f"unknown method {json.dumps(name)} (known: {', '.join(METHOD_SPECS)})")
    channel, trace, train, skyline = METHOD_SPECS[name]
    return {"name": name, "channel": channel, "trace": trace, "train": train, "skyline": skyline}


def default_config(**over) -> dict:
    """run.ts defaultRunConfig (topology given by the caller)."""
    c = {"task": "lookup", "difficulty": 1, "method": "diffmas", "modelId": "builtin:toy",
         "lora": {"r": 8, "alpha": 16, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]},
         "lr": 3e-3, "steps": 300, "batch": 32, "seed": 1, "latentMap": "ridge", "textBudget": 8, "evalEvery": 50, "evalSize": 128}
    c.update(over)
    return c


# ---------------------------------------------------------------- topologies (topology.ts)

def _agent(id_, name, role, steps, adapter):
    return {"id": id_, "name": name, "role": role, "latentSteps": steps, "adapter": adapter}


def chain(n: int, steps: int, adapter: str = "own", roles=None, names=None) -> dict:
    default_names = ["planner", "critic", "solver"] if n == 3 else [f"agent{i + 1}" for i in range(n)]
    agents = [_agent(f"a{i}", (names or default_names)[i], roles[i] if roles else i, 0 if i == n - 1 else steps, adapter) for i in range(n)]
    return {"agents": agents, "edges": [[f"a{i}", f"a{i + 1}"] for i in range(n - 1)], "final": f"a{n - 1}"}


def star(n: int, steps: int, adapter: str = "own", roles=None, names=None) -> dict:
    default_names = [f"sender{i + 1}" for i in range(n - 1)] + ["aggregator"]
    agents = [_agent(f"a{i}", (names or default_names)[i], roles[i] if roles else i, 0 if i == n - 1 else steps, adapter) for i in range(n)]
    return {"agents": agents, "edges": [[f"a{i}", f"a{n - 1}"] for i in range(n - 1)], "final": f"a{n - 1}"}


def resolve_topology(name: str, task, steps: int = DEFAULT_LATENT_STEPS, adapter: str = "own") -> dict:
    """presets.ts resolveTopology: a topology by preset name or URL form, every sender given `steps`."""
    n = task.roles
    roles, names = list(range(n)), list(task.spec.role_names)
    if name == "preset":
        return (chain if task.spec.flow == "chain" else star)(n, steps, adapter, roles, names)
    if name == "star":
        return star(n, steps, adapter, roles, names)
    if name == "chain":
        return chain(n, steps, adapter, roles, names)
    if name == "two-round":
        if n != 2:
            raise ValueError(f"topology two-round needs a two-part task, this one has {n} parts")
        return {"agents": [_agent("a", "A", 1, steps, adapter), _agent("b", "B", 0, steps, adapter), _agent("a2", "A'", 1, 0, adapter)],
                "edges": [["a", "b"], ["b", "a2"]], "final": "a2"}
    if name == "single":
        return {"agents": [_agent("a", "solver", n - 1, 0, adapter)], "edges": [], "final": "a"}
    if name.startswith("v1;"):
        return parse_topology(name)
    raise ValueError(f"unknown topology '{name}' (have: {', '.join(TOPOLOGY_NAMES)}, or the URL form v1;agents;edges;final)")


def parse_topology(s: str) -> dict:
    """topology.ts parseTopology: v1;id:role:steps:adapter:name,...;from-to,...;final."""
    def fail(why):
        raise ValueError(f"cannot read topology {json.dumps(s if len(s) <= 80 else s[:77] + '...')}: {why}")

    sections = s.strip().split(";")
    if sections[0] != "v1":
        fail(f"it must start with 'v1;' (got {json.dumps(sections[0])})")
    if len(sections) != 4:
        fail(f"expected 4 sections 'v1;agents;edges;final' separated by ';', got {len(sections)}")
    _, agents_text, edges_text, final = sections
    if agents_text == "":
        fail("the agents section is empty")
    agents = []
    for i, item in enumerate(agents_text.split(",")):
        f = item.split(":")
        if len(f) != 5:
            fail(f"agent #{i + 1} {json.dumps(item)} has {len(f)} fields, expected 5 (id:role:steps:adapter:name)")
        id_, role_t, steps_t, adapter_t, name_t = f
        if not AGENT_ID.fullmatch(id_):
            fail(f"agent #{i + 1} has id {json.dumps(id_)}: ids are 1-16 letters, digits or underscores")
        if role_t != "n" and not re.fullmatch(r"\d{1,3}", role_t):
            fail(f"agent {id_} has role {json.dumps(role_t)}: expected a part index or 'n'")
        if not re.fullmatch(r"\d{1,3}", steps_t):
            fail(f"agent {id_} has latent steps {json.dumps(steps_t)}: expected a whole number")
        if adapter_t not in ("o", "s"):
            fail(f"agent {id_} has adapter {json.dumps(adapter_t)}: expected 'o' (own) or 's' (shared)")
        agents.append(_agent(id_, unquote(name_t), "none" if role_t == "n" else int(role_t), int(steps_t), "shared" if adapter_t == "s" else "own"))
    edges = []
    for e in edges_text.split(",") if edges_text else []:
        parts = e.split("-")
        if len(parts) != 2:
            fail(f"edge {json.dumps(e)} is not from-to")
        edges.append(parts)
    return {"agents": agents, "edges": edges, "final": final}


def topology_problems(t: dict, parts: int) -> list[str]:
    """validateTopology's problems (its messages), for a task of `parts` parts."""
    out = []
    agents = t.get("agents") if isinstance(t, dict) and isinstance(t.get("agents"), list) else []
    if not agents:
        return ["The topology has no agents."]
    if len(agents) > MAX_AGENTS:
        out.append(f"The topology has {len(agents)} agents; at most {MAX_AGENTS} are supported.")
    ids = []
    for i, a in enumerate(agents):
        if not isinstance(a, dict):
            out.append(f"Agent #{i + 1} is not an agent object.")
            continue
        id_ = a.get("id") if isinstance(a.get("id"), str) else ""
        if not AGENT_ID.fullmatch(id_):
            out.append(f"Agent #{i + 1} has id {json.dumps(a.get('id'))}: ids are 1-16 letters, digits or underscores.")
        if id_ in ids:
            out.append(f"Two agents share the id {json.dumps(id_)}.")
        else:
            ids.append(id_)
        role = a.get("role")
        if role != "none":
            if not (isinstance(role, int) and not isinstance(role, bool) and role >= 0):
                out.append(f"Agent {id_} has role {json.dumps(role)}: a role is a part index (0, 1, ...) or 'none'.")
            elif role >= parts:
                out.append(f"Agent {id_} holds part {role}, but the task's episodes have only {parts} parts (0..{parts - 1}).")
        steps = a.get("latentSteps")
        if not (isinstance(steps, int) and not isinstance(steps, bool) and 0 <= steps <= MAX_LATENT_STEPS):
            out.append(f"Agent {id_} has {steps} latent steps; the range is 0..{MAX_LATENT_STEPS}.")
        if a.get("adapter") not in ("own", "shared"):
            out.append(f"Agent {id_} has adapter {json.dumps(a.get('adapter'))}; expected 'own' or 'shared'.")
    pred = {i: [] for i in ids}
    seen = set()
    for e in t.get("edges") if isinstance(t.get("edges"), list) else []:
        ok = isinstance(e, (list, tuple)) and len(e) == 2 and all(isinstance(x, str) and x in pred for x in e)
        if not ok:
            out.append(f"The edge {e!r} names an agent that is not in the topology.")
            continue
        if tuple(e) in seen:
            out.append(f"The edge {e[0]} -> {e[1]} appears twice.")
            continue
        seen.add(tuple(e))
        pred[e[1]].append(e[0])
    try:
        topological_order({"agents": [{"id": i} for i in ids], "edges": [list(e) for e in seen]})
    except ValueError as err:
        out.append(f"{err}.")
    final = t.get("final")
    if not isinstance(final, str) or final not in pred:
        out.append("No final agent is chosen: one agent must answer." if not final else f"The final agent {json.dumps(final)} is not among the agents.")
    else:
        sends = [to for f, to in seen if f == final]
        if sends:
            out.append(f"The final agent {final} sends to {', '.join(sends)}; the final agent must only receive.")
        reach, stack = {final}, [final]
        while stack:
            for p in pred[stack.pop()]:
                if p not in reach:
                    reach.add(p)
                    stack.append(p)
        out += [f"Agent {i} has no path to the final agent {final}: its work would be lost." for i in ids if i not in reach]
    return out


def topological_order(t: dict) -> list[str]:
    """topology.ts topologicalOrder: senders before receivers, ties in agents order."""
    ids = [a["id"] for a in t["agents"]]
    pos = {i: k for k, i in enumerate(ids)}
    indeg = {i: 0 for i in ids}
    succ = {i: [] for i in ids}
    for f, to in t["edges"]:
        succ[f].append(to)
        indeg[to] += 1
    ready = [i for i in ids if indeg[i] == 0]
    out = []
    while ready:
        v = min(ready, key=pos.__getitem__)
        ready.remove(v)
        out.append(v)
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
    if len(out) != len(ids):
        raise ValueError(f"the topology has a cycle through {', '.join(i for i in ids if i not in out)}")
    return out


def predecessors(t: dict, id_: str) -> list[str]:
    src = {f for f, to in t["edges"] if to == id_}
    return [a["id"] for a in t["agents"] if a["id"] in src]


# ---------------------------------------------------------------- validation and plan

def _int(c: dict, name: str, v, lo: int, hi: int):
    if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
        raise ValueError(f"run config: {name} must be an integer in {lo}..{hi}, got {json.dumps(v)}")


def validate_config(c: dict):
    """methods.ts validateRunConfig: the task and the method spec, or a ValueError naming the setting and the fix."""
    if not isinstance(c, dict):
        raise ValueError("run config: expected an object")
    if c.get("task") not in TASK_NAMES:
        raise ValueError(f"run config: unknown task {json.dumps(c.get('task'))} (known: {', '.join(TASK_NAMES)})")
    _int(c, "difficulty", c.get("difficulty"), 1, 5)
    task = make_task(c["task"], c["difficulty"])
    spec = method_spec(c.get("method"))
    for k in ("steps", "batch"):
        _int(c, k, c.get(k), *LIMITS[k])
    lr = c.get("lr")
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and LIMITS["lr"][0] <= lr <= LIMITS["lr"][1]):
        raise ValueError(f"run config: lr must be in [{LIMITS['lr'][0]}, {LIMITS['lr'][1]}], got {json.dumps(lr)}")
    for k in ("seed", "evalSeed"):
        v = c.get(k)
        if (k == "seed" or v is not None) and not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53 - 1):
            raise ValueError(f"run config: {k} must be a non-negative integer, got {json.dumps(v)}")
    _int(c, "textBudget", c.get("textBudget"), *LIMITS["textBudget"])
    tt = c.get("textTemperature")
    if tt is not None and not (isinstance(tt, (int, float)) and LIMITS["textTemperature"][0] <= tt <= LIMITS["textTemperature"][1]):
        raise ValueError(f"run config: textTemperature must be a number in [{LIMITS['textTemperature'][0]}, {LIMITS['textTemperature'][1]}], got {json.dumps(tt)}")
    if c.get("lrSchedule") is not None and c["lrSchedule"] not in ("cosine", "constant"):
        raise ValueError(f"run config: lrSchedule must be 'cosine' or 'constant', got {json.dumps(c['lrSchedule'])}")
    if c.get("latentSlotOffset") is not None and not isinstance(c["latentSlotOffset"], bool):
        raise ValueError(f"run config: latentSlotOffset must be true or false, got {json.dumps(c['latentSlotOffset'])}")
    _int(c, "evalEvery", c.get("evalEvery"), *LIMITS["evalEvery"])
    _int(c, "evalSize", c.get("evalSize"), *LIMITS["evalSize"])
    if c.get("rendering") is not None and c["rendering"] not in ("char", "word", "chat"):
        raise ValueError(f"run config: rendering must be one of char, word, chat, got {json.dumps(c['rendering'])}")
    if c.get("positions") is not None and c["positions"] not in ("stream", "prefix"):
        raise ValueError(f"run config: positions must be 'stream' or 'prefix', got {json.dumps(c['positions'])}")
    if c.get("latentMap") not in ("ridge", "identity"):
        raise ValueError(f"run config: latentMap must be 'ridge' or 'identity', got {json.dumps(c.get('latentMap'))}")
    lora = c.get("lora")
    if not isinstance(lora, dict):
        raise ValueError("run config: lora {r, alpha, targets} is missing")
    _int(c, "lora.r", lora.get("r"), *LIMITS["r"])
    alpha = lora.get("alpha")
    if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and 0 < alpha <= 1024):
        raise ValueError(f"run config: lora.alpha must be in (0, 1024], got {json.dumps(alpha)}")
    targets = lora.get("targets")
    if not isinstance(targets, list) or not targets:
        raise ValueError("run config: lora.targets must list at least one projection")
    for p in targets:
        if p not in PROJS:
            raise ValueError(f"run config: lora target {json.dumps(p)} is not one of {', '.join(PROJS)}")
    if spec["train"] != "none" and c["steps"] < 1:
        raise ValueError(f"run config: method {spec['name']} trains adapters: steps must be at least 1")
    # the two training ablations of issue 22 (quiz.py, curriculum.py)
    from .curriculum import curriculum_problem
    from .quiz import quiz_problem

    ablation = quiz_problem(c, spec) or curriculum_problem(c, spec)
    if ablation:
        raise ValueError(ablation)
    t = c.get("topology")
    problems = topology_problems(t, task.roles)
    if problems:
        raise ValueError(f"topology does not fit task {task.name} ({task.roles} parts):\n" + "\n".join(f"- {p}" for p in problems))
    final = next(a for a in t["agents"] if a["id"] == t["final"])
    if final["latentSteps"] != 0 and spec["channel"] == "latent":
        raise ValueError(f"topology: the final agent {final['id']} has {final['latentSteps']} latent steps; the final agent answers directly, set its latent steps to 0")
    if spec["channel"] != "none" and not predecessors(t, t["final"]):
        raise ValueError(f"method {spec['name']} needs senders, but the final agent {final['id']} receives from no agent (a single-agent topology): use a topology with senders, or the method 'single'")
    held = {a["role"] for a in t["agents"]}
    missing = [i for i in range(task.roles) if i not in held]
    if missing and spec["channel"] != "none":
        raise ValueError(f"topology does not fit task {task.name}: no agent holds {', '.join(f'part {i} ({task.spec.role_names[i]})' for i in missing)}, so no method could answer; give each part to an agent")
    if spec["channel"] == "latent" and spec["trace"] == "latent":
        silent = [a["id"] for a in t["agents"] if a["id"] != t["final"] and a["latentSteps"] < 1]
        if silent:
            alt = "latentmas-full" if spec["train"] == "none" else "diffmas-full"
            raise ValueError(f"method {spec['name']} passes on only the latent positions, but sender {', '.join(silent)} has 0 latent steps (its trace would be empty): give every sender at least 1 latent step, or use {alt}")
    if c.get("latentSlotOffset") and not (spec["channel"] == "latent" and spec["train"] == "all"):
        why = "has no latent steps" if spec["channel"] != "latent" else "trains nothing" if spec["train"] == "none" else "trains the receiver only"
        raise ValueError(f"run config: latentSlotOffset trains an input offset per latent step of each sender, with the sender's adapter, but method {spec['name']} {why}: use diffmas or diffmas-full, or turn it off")
    return task, spec


def make_plan(t: dict, spec: dict) -> list[dict]:
    """data.ts makePlan, as run.json's agents: participants in topological order, the final one last,
    each with its predecessors and its adapter key (an agent id, 'shared', or None when it trains nothing)."""
    by_id = {a["id"]: a for a in t["agents"]}
    ids = [t["final"]] if spec["channel"] == "none" else topological_order(t)
    out = []
    for i in ids:
        a = by_id[i]
        final = i == t["final"]
        trains = spec["train"] == "all" or (spec["train"] == "receiver" and final)
        out.append({
            "id": i, "name": a["name"], "role": a["role"], "latentSteps": a["latentSteps"] if spec["channel"] == "latent" and not final else 0,
            "adapter": a["adapter"], "adapterKey": ("shared" if a["adapter"] == "shared" else i) if trains else None, "final": final,
            "predecessors": [] if spec["channel"] == "none" else predecessors(t, i),
        })
    return out


def plan_agents(plan: list[dict]) -> list[PlanAgent]:
    ids = [a["id"] for a in plan]
    return [PlanAgent(a["id"], a["role"], a["latentSteps"], a["adapterKey"], a["final"], [ids.index(p) for p in a["predecessors"]]) for a in plan]

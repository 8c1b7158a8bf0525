"""The Python ports (rng.py, tasks.py) reproduce the engine's data: the seeded streams bit for bit, every
evaluation episode of every bundle, and every training batch a bundle carries (what `train` relies on to
draw the batches after them)."""
from __future__ import annotations

from conftest import case_dirs
from latent_playground.agents import plan_of
from latent_playground.bundle import read_bundle
from latent_playground.rng import Rng, derive_seed, hash_string
from latent_playground.tasks import batch_stream, eval_episodes, make_task, prompt_text, sample_episodes, split_of_content
from latent_playground.tokenizer import load_tokenizer


def test_rng_matches_typescript():
    # values printed by src/tasks/rng.ts
    assert [hash_string("abc"), hash_string("split:lookup", 5), hash_string("")] == [1102761552, 3845722648, 2462723854]
    assert [derive_seed(1, "init", "lora", "a0"), derive_seed(2**40 + 3, "x", 4), derive_seed(0)] == [2129882197, 1366714170, 327721211]
    r = Rng(derive_seed(7, "eval"))
    assert [r.next_uint32() for _ in range(3)] == [2394236262, 1847518221, 3469487984]
    assert [r.int(0, 10), r.int(5, 9)] == [8, 5]
    assert [r.normal(), r.normal()] == [0.42416342336963625, -1.3870750441355935]
    assert r.shuffled(range(8)) == [7, 0, 3, 4, 5, 6, 2, 1]
    assert r.sample("abcde", 3) == ["a", "e", "b"]
    a, b = Rng(5), Rng(5)
    assert [a.next_uint32() for _ in range(9)] == list(b.uint32s(9)) and a.s == b.s


def test_splits_and_evaluation_sets_match_typescript():
    """Values printed by src/tasks/tasks.ts: the content partition, the training stream, and evaluation
    sets (every distinct episode once where a split is small, else distinct draws) from the evaluation seed."""
    arith = eval_episodes(make_task("arith", 1), None, 512, "heldout")
    assert len(arith) == 38 and [e.key for e in arith[:4]] == ["0+1", "0-1", "0+9", "0-9"]
    relay = eval_episodes(make_task("relay", 1), None, 512, "heldout")
    assert len(relay) == 282 and [e.parts for e in relay[:2]] == [["key:aa", "rly:ok", "pos:1"], ["key:aa", "rly:ok", "pos:2"]]
    lookup = eval_episodes(make_task("lookup", 2), 5, 300, "heldout")
    assert [e.key for e in lookup[:2]] == ["c1d5x6?x", "b5e8y1?y"] and lookup[0].parts == ["tbl:c1d5x6", "ask:x"]
    assert len({e.key for e in lookup}) == 300
    want = {
        "lookup": (["d0g6?g", "m9n0?m", "h4v3?v"], ["k8p8q1w9?p", "b6e5k6r4?k"]),
        "relay": (["ij@2", "ll@1", "or@1"], ["atef@4", "utre@4"]),
        "arith": (["6-6", "9-7", "4-0"], ["72-43", "85-83"]),
    }
    for name, (train, ood) in want.items():
        task = make_task(name, 1)
        assert [e.key for e in sample_episodes(task, "train", 3, 3)] == train
        ood_eps = eval_episodes(task, None, 300, "ood")
        assert [e.key for e in ood_eps[:2]] == ood
        # ood content is of the heldout partition: no training stream at any difficulty draws it
        assert all(split_of_content(name, e.content_key) == "heldout" for e in ood_eps)
        assert all(split_of_content(name, e.content_key) == "train" for e in sample_episodes(task, "train", 200, 4))


def test_episodes_and_batches_are_the_bundles(engine_dir):
    for case in case_dirs(engine_dir):
        b = read_bundle(case / "bundle")
        cfg = b.config
        task = make_task(cfg["task"], cfg["difficulty"])
        tk = load_tokenizer(b.base_dir, b.json["tokens"])
        plan = plan_of(b)
        assert b.json["maxAnswerTokens"] == task.max_answer_length
        for split, eps in b.episodes.items():
            mine = eval_episodes(task, cfg.get("evalSeed"), cfg["evalSize"], split)
            assert [e.key for e in mine] == [e["key"] for e in eps], f"{case.name} {split}"
            for m, e in zip(mine, eps):
                assert (m.parts, m.answer) == (e["parts"], e["answer"])
                # every method's prompts without messages (a text channel's bundle inserts them at messagesAt)
                assert [tk.encode(prompt_text(m, a, b.method["skyline"])) for a in plan] == [a["ids"] for a in e["agents"]]
        if b.batches:
            T = cfg["textBudget"] if b.method["name"] == "text-trained" else None
            stream = batch_stream(task, tk, plan, b.method["skyline"], cfg["seed"], cfg["batch"], b.json["maxAnswerTokens"], text_budget=T)
            for want in b.batches:
                got = next(stream)
                assert got["signature"] == want["signature"] and got["rows"] == want["rows"], f"{case.name} batch {want['batch']}"


def test_train_draws_the_batches_after_the_bundles(engine_dir):
    """train.py's Batches past a bundle's own batches: a bundle cut to its first 4 gets batches 5.. from
    the port, and they are the ones the engine trained on (text-trained's message slots included)."""
    import dataclasses

    from latent_playground.train import Batches

    cases = [c for c in case_dirs(engine_dir) if len(read_bundle(c / "bundle").batches) > 4]
    assert "lookup-text-trained" in {c.name for c in cases}
    for case in cases:
        b = read_bundle(case / "bundle")
        cut = dataclasses.replace(b, batches=b.batches[:4])
        batches = Batches(cut, load_tokenizer(b.base_dir, b.json["tokens"]))
        for want in b.batches[4:]:
            got = batches.get(want["batch"])
            assert (got["batch"], got["signature"], got["rows"]) == (want["batch"], want["signature"], want["rows"]), f"{case.name} batch {want['batch']}"


def test_latent_map_is_the_engines(engine_dir):
    """The ridge map recomputed here (for --base) is the bundle's, which the engine computed in float64."""
    import numpy as np

    from latent_playground.agents import Team, compute_latent_map

    b = read_bundle(engine_dir / "lookup-diffmas" / "bundle")
    team = Team(b, None)
    m = compute_latent_map(team.model, "ridge")
    assert abs(m.target_norm - b.latent_map.target_norm) <= 1e-12 * b.latent_map.target_norm
    want = b.latent_map.Wa.double().numpy()
    assert np.abs(m.Wa.double().numpy() - want).max() <= 1e-5 * np.abs(want).max()
    assert abs(m.lam - b.latent_map.lam) <= 1e-9 * b.latent_map.lam

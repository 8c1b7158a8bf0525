"""The companion's index task (tasks_index.py) draws the engine's episodes: the digests below are printed
by tests/index-task.test.ts (the same numbers there), over the seeded training stream and the evaluation
sets of every difficulty and split."""
from __future__ import annotations

from latent_playground.rng import derive_seed, hash_string
from latent_playground.tasks import evaluation_episodes, make_task, sample_episodes, split_of_content

# "difficulty/split" -> (digest of the first 200 episodes of seed 3, evaluation set size, its digest)
STREAMS = {
    "1/train": (3355873442, 172, 553105383),
    "1/heldout": (3001398621, 28, 2393664595),
    "1/ood": (2162895437, 300, 3901024153),
    "2/train": (976698747, 300, 2891091126),
    "2/heldout": (2788182772, 300, 788098952),
    "2/ood": (1326253934, 300, 4292571228),
    "3/train": (1363029073, 300, 970838946),
    "3/heldout": (729664893, 300, 1389034385),
    "3/ood": (3068235530, 300, 1624109233),
    "4/train": (3921413622, 300, 4064931253),
    "4/heldout": (3074861939, 300, 3129644165),
    "4/ood": (2701435519, 300, 298817316),
    "5/train": (4273216033, 300, 3451393242),
    "5/heldout": (3878413720, 300, 4050961509),
    "5/ood": (1316994917, 300, 3251166728),
}


def _digest(eps) -> int:
    return hash_string("\n".join(f"{e.key}|{'/'.join(e.parts)}|{e.answer}" for e in eps))


def test_index_streams_match_the_engine():
    for key, (train, n, ev) in STREAMS.items():
        d, split = key.split("/")
        task = make_task("index", int(d))
        assert _digest(sample_episodes(task, split, 200, 3)) == train, key
        got = evaluation_episodes(task, split, 300, derive_seed(1, "eval"))
        assert (len(got), _digest(got)) == (n, ev), key


def test_index_episodes_and_partition():
    task = make_task("index", 5)
    for e in sample_episodes(task, "ood", 50, 1):
        array, i = e.contents
        assert len(array) == 10 and e.answer == array[int(i) - 1] and e.parts == [f"arr:{array}", f"idx:{i}"]
        assert split_of_content("index", e.content_key) == "heldout"
    assert task.chance_for("heldout") == 0.1 and task.max_answer_length == 1

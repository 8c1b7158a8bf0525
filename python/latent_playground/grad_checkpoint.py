"""Gradient checkpointing of the decoder layers (train --grad-checkpointing): each layer's activations
are dropped after the forward pass and recomputed in the backward pass (torch.utils.checkpoint,
non-reentrant), so a layer's intermediates (MLP, attention scores) live only while its gradient is made.

transformers' own gradient_checkpointing_enable() cannot be used here: it turns the KV cache off
(use_cache=False, past_key_values=None), and the DiffMAS rollout is made of caches (a receiver reads its
senders' K/V through past_key_values; latent steps extend the sender's cache). The layer's cache
update is a side effect that the recomputation must not repeat: the first run of the layer updates
the real cache; the recomputation gets a stand-in whose update() returns what the real one returned
then (the cache's K/V before the update, concatenated with the recomputed new K/V) without touching it.
"""
from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


class _Replay:
    """A cache for one layer's recomputation: update() concatenates onto the K/V the layer saw, as the real update did."""

    def __init__(self, before):
        self.before = before

    def update(self, keys, values, layer_idx, *args, **kwargs):
        if self.before is None:
            return keys, values
        k, v = self.before
        return torch.cat([k, keys], dim=-2), torch.cat([v, values], dim=-2)


def _kv_before(cache, idx: int):
    layers = getattr(cache, "layers", None)
    if layers is None or idx >= len(layers):
        return None
    layer = layers[idx]
    if not getattr(layer, "is_initialized", True) or getattr(layer, "keys", None) is None or layer.keys.numel() == 0:
        return None
    return layer.keys, layer.values


def enable(decoder: torch.nn.Module) -> int:
    """Checkpoints every decoder layer of `decoder` (a transformers *Model with .layers); returns how many."""
    n = 0
    for layer in decoder.layers:
        if getattr(layer, "_lp_checkpointed", False):
            continue
        orig = layer.forward
        idx = layer.self_attn.layer_idx

        def fwd(hidden_states, *args, past_key_values=None, _orig=orig, _idx=idx, **kw):
            if not torch.is_grad_enabled():
                return _orig(hidden_states, *args, past_key_values=past_key_values, **kw)
            before = _kv_before(past_key_values, _idx) if past_key_values is not None else None
            calls = [0]

            def run(h, *a, **k):
                calls[0] += 1
                cache = past_key_values if calls[0] == 1 or past_key_values is None else _Replay(before)
                return _orig(h, *a, past_key_values=cache, **k)
            return checkpoint(run, hidden_states, *args, use_reentrant=False, **kw)
        layer.forward = fwd
        layer._lp_checkpointed = True
        n += 1
    return n

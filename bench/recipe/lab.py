# The pretraining-recipe search tool (bench/recipe/README.md): a PyTorch re-implementation of the
# toy Llama (RMSNorm, RoPE rotate-half, GQA, SwiGLU, tied embeddings, init N(0, 0.02)) and of the
# synthetic corpus's variants (question format, loss mask, copy share, quiz, weights), with greedy
# skyline and text-channel evaluation. It is a search tool, not the product: ~50x faster than the
# engine on a 2-core CPU for these shapes, so a recipe could be found in minutes; the recipe it found
# is implemented in src/tasks/corpus.ts and src/model/pretrain.ts and the shipped bases were made
# with the engine (their training_args.json). Its split hash (md5) differs from the engine's, so its
# held-out sets are its own.
import math, random, hashlib, sys, json, time, argparse
import torch, torch.nn as nn, torch.nn.functional as F

CHARS = '0123456789abcdefghijklmnopqrstuvwxyz \n=;:?,.+-*/#_|'
VOCAB = ['<pad>', '<bos>', '<eos>'] + list(CHARS)
PAD, BOS, EOS = 0, 1, 2
ID = {c: i + 3 for i, c in enumerate(CHARS)}
LET = 'abcdefghijklmnopqrstuvwxyz'
LOOKUP_SIZES = [2, 3, 4, 6, 8]
QF = {'mode': 'ans'}

def enc(s):
    out = []; i = 0
    while i < len(s):
        if s.startswith('<bos>', i): out.append(BOS); i += 5
        elif s.startswith('<eos>', i): out.append(EOS); i += 5
        else: out.append(ID[s[i]]); i += 1
    return out

def split_of(task, key):
    h = int(hashlib.md5(f'{task}:{key}'.encode()).hexdigest()[:8], 16)
    return 'heldout' if h % 1000 < 200 else 'train'

# pieces: list of (text, kind) where kind in 'fmt','rand','ans'
def draw(task, d, rng, ood=False, fmt='base'):
    if task == 'lookup':
        n = LOOKUP_SIZES[d - 1] + (2 if ood else 0)
        keys = rng.sample(LET, n); vals = [rng.randrange(10) for _ in keys]
        canon = ''.join(sorted(f'{k}{v}' for k, v in zip(keys, vals)))
        return dict(keys=keys, vals=vals, canon=canon, n=n)
    if task == 'relay':
        L = d + 1 + (2 if ood else 0)
        return dict(secret=''.join(rng.choice(LET) for _ in range(L)), dis=''.join(rng.choice(LET) for _ in range(L)), L=L)
    if task == 'arith':
        D = d + 1 if ood else d
        lo = 10 ** (D - 1) if ood else 0
        return dict(a=rng.randrange(lo, 10 ** D), b=rng.randrange(lo, 10 ** D), D=D)

class Task:
    def __init__(self, name, d, fmt='base'):
        self.name, self.d, self.fmt = name, d, fmt
    def episode(self, rng, split):
        while True:
            e = self._ep(rng, split == 'ood')
            if split == 'ood' or split_of(self.name, e['key']) == split: return e
    def _ep(self, rng, ood):
        t = self.name
        if t == 'lookup':
            x = draw(t, self.d, rng, ood)
            q = rng.randrange(x['n'])
            table = ''.join(f'{k}{v}' for k, v in zip(x['keys'], x['vals']))
            qs = [(x['keys'][i], str(x['vals'][i])) for i in range(x['n'])]
            fin = [('ask:', 'f'), (x['keys'][q], 'r')] + ([] if QF['mode'] in ('eq', 'bare') else [('\n', 'f')])
            return dict(qkey=x['keys'][q], kfn=lambda k, c=x['canon']: c + '?' + k, key=x['canon'] + '?' + x['keys'][q], parts=[[('tbl:', 'f'), (table, 'r'), ('\n', 'f')], fin],
                        msgs=[table, ''], answer=str(x['vals'][q]), queries=qs, qfmt=lambda k: [('ask:', 'f'), (k, 'r')] + ([] if QF['mode'] in ('eq', 'bare') else [('\n', 'f')]))
        if t == 'relay':
            x = draw(t, self.d, rng, ood)
            k = rng.randrange(1, x['L'] + 1)
            qs = [(str(i), x['secret'][i - 1]) for i in range(1, x['L'] + 1)]
            return dict(qkey=str(k), kfn=lambda j, sc=x['secret']: f"{sc}@{j}", key=f"{x['secret']}@{k}", parts=[[('key:', 'f'), (x['secret'], 'r'), ('\n', 'f')], [('rly:', 'f'), (x['dis'], 'r'), ('\n', 'f')], [('pos:', 'f'), (str(k), 'r')] + ([] if QF['mode'] in ('eq', 'bare') else [('\n', 'f')])],
                        msgs=[x['secret'], x['secret'], ''], answer=x['secret'][k - 1], queries=qs, qfmt=lambda k: [('pos:', 'f'), (k, 'r')] + ([] if QF['mode'] in ('eq', 'bare') else [('\n', 'f')]))
        if t == 'arith':
            x = draw(t, self.d, rng, ood)
            op = rng.choice('+-')
            res = lambda o: str(x['a'] + x['b'] if o == '+' else x['a'] - x['b'])
            return dict(qkey=op, kfn=lambda o, a=x['a'], b=x['b']: f"{a}{o}{b}", key=f"{x['a']}{op}{x['b']}", parts=[[('a=', 'f'), (str(x['a']), 'r'), ('\n', 'f')], [('b=', 'f'), (str(x['b']), 'r'), ('\n', 'f')], [('op=', 'f'), (op, 'r')] + ([] if QF['mode'] in ('eq', 'bare') else [('\n', 'f')])],
                        msgs=[f"a={x['a']}", f"b={x['b']}", ''], answer=res(op), queries=[(o, res(o)) for o in '+-'], qfmt=lambda o: [('op=', 'f'), (o, 'r')] + ([] if QF['mode'] in ('eq', 'bare') else [('\n', 'f')]))

def CUE():
    return {'eq': '=', 'bare': ''}.get(QF['mode'], 'ans:')

def pieces_to(pieces):
    ids, w = [], []
    for text, kind in pieces:
        t = enc(text); ids += t; w += [kind] * len(t)
    return ids, w

ALL = [('lookup', d) for d in (1, 2, 3, 4, 5)] + [('relay', d) for d in (1, 2, 3, 4, 5)] + [('arith', d) for d in (1, 2, 3, 4, 5)]

def chain_incoming(task, e, role):
    n = len(e['parts'])
    if task.name == 'relay': return [e['msgs'][role - 1]] if role > 0 else []
    return e['msgs'][:n - 1] if role == n - 1 else []

def make_seq(task, e, kind, rng, extra_q):
    """returns pieces (text, kind f/r/a). kind: skyline, transcript, send, receive"""
    n = len(e['parts']); fin = n - 1
    P = []
    def answer_block(first=True):
        blk = [(CUE(), 'f'), (e['answer'], 'a'), ('<eos>', 'a')]
        return blk
    def more_queries():
        out = []
        qs = [q for q in e['queries'] if q[1] is not None and q[0] != e.get('qkey') and split_of(task.name, e['kfn'](q[0])) == 'train']; rng.shuffle(qs)
        for k, a in qs[:extra_q]:
            out += e['qfmt'](k) + [(CUE(), 'f'), (a, 'a'), ('<eos>', 'a')]
        return out
    if kind == 'skyline':
        P = [('<bos>', 'f')] + sum(e['parts'], []) + answer_block() + more_queries()
    elif kind == 'transcript':
        P = [('<bos>', 'f')]
        for i in range(fin): P += e['parts'][i] + [('msg:', 'f'), (e['msgs'][i], 'c'), ('\n', 'c')]
        P += e['parts'][fin] + answer_block() + more_queries()
    elif kind == 'send':
        role = rng.randrange(fin)
        P = [('<bos>', 'f')] + [x for m in chain_incoming(task, e, role) for x in [('msg:', 'f'), (m, 'r'), ('\n', 'f')]] + e['parts'][role] + [('msg:', 'f'), (e['msgs'][role], 'c'), ('\n', 'c')]
    elif kind == 'receive':
        P = [('<bos>', 'f')] + [x for m in chain_incoming(task, e, fin) for x in [('msg:', 'f'), (m, 'r'), ('\n', 'f')]] + e['parts'][fin] + answer_block() + more_queries()
    return P

class Corpus:
    def __init__(self, tasks, seed, mix, extra_q=0, mask_random=True, w_ans=1.0, weights=None):
        self.tasks = [Task(n, d) for n, d in tasks]; self.rng = random.Random(seed); self.tw = weights or [1.0] * len(self.tasks)
        self.mix = mix; self.extra_q = extra_q; self.mask = mask_random; self.w_ans = w_ans
    def batch(self, B):
        seqs = []
        kinds = list(self.mix.keys()); wts = list(self.mix.values())
        for _ in range(B):
            t = self.rng.choices(self.tasks, self.tw)[0]; e = t.episode(self.rng, 'train')
            k = self.rng.choices(kinds, wts)[0]
            ids, w = pieces_to(make_seq(t, e, k, self.rng, self.extra_q))
            seqs.append((ids, w))
        S = max(len(s[0]) for s in seqs) - 1
        X = torch.zeros(B, S, dtype=torch.long); Y = torch.full((B, S), -100, dtype=torch.long); W = torch.zeros(B, S)
        for b, (ids, w) in enumerate(seqs):
            X[b, :len(ids) - 1] = torch.tensor(ids[:-1]); Y[b, :len(ids) - 1] = torch.tensor(ids[1:])
            for i in range(1, len(ids)):
                kk = w[i]
                W[b, i - 1] = (0.0 if (kk == 'r' and self.mask) else self.w_ans if kk == 'a' else 1.0)
        return X, Y, W

class RMS(nn.Module):
    def __init__(s, d): super().__init__(); s.w = nn.Parameter(torch.ones(d))
    def forward(s, x): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * s.w

def rope(x, pos, theta=10000.0):  # x [B,H,S,hd]
    hd = x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd)
    f = pos[:, None].float() * inv[None]
    emb = torch.cat([f, f], -1); c, s = emb.cos(), emb.sin()
    x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
    return x * c + torch.cat([-x2, x1], -1) * s

class Block(nn.Module):
    def __init__(s, D, I, H, Hkv):
        super().__init__(); s.H, s.Hkv, s.hd = H, Hkv, D // H
        s.n1, s.n2 = RMS(D), RMS(D)
        s.q = nn.Linear(D, D, bias=False); s.k = nn.Linear(D, Hkv * s.hd, bias=False); s.v = nn.Linear(D, Hkv * s.hd, bias=False); s.o = nn.Linear(D, D, bias=False)
        s.g = nn.Linear(D, I, bias=False); s.u = nn.Linear(D, I, bias=False); s.dn = nn.Linear(I, D, bias=False)
    def forward(s, x, pos):
        B, S, D = x.shape; h = s.n1(x)
        q = s.q(h).view(B, S, s.H, s.hd).transpose(1, 2); k = s.k(h).view(B, S, s.Hkv, s.hd).transpose(1, 2); v = s.v(h).view(B, S, s.Hkv, s.hd).transpose(1, 2)
        q, k = rope(q, pos), rope(k, pos)
        r = s.H // s.Hkv; k = k.repeat_interleave(r, 1); v = v.repeat_interleave(r, 1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + s.o(a.transpose(1, 2).reshape(B, S, D))
        h = s.n2(x)
        return x + s.dn(F.silu(s.g(h)) * s.u(h))

class LM(nn.Module):
    def __init__(s, D, I, L, H, Hkv, V=len(VOCAB), std=0.02):
        super().__init__(); s.emb = nn.Embedding(V, D); s.blocks = nn.ModuleList([Block(D, I, H, Hkv) for _ in range(L)]); s.norm = RMS(D)
        for p in s.parameters():
            if p.dim() > 1: nn.init.normal_(p, std=std)
    def forward(s, X):
        pos = torch.arange(X.shape[1]); x = s.emb(X)
        for b in s.blocks: x = b(x, pos)
        return s.norm(x) @ s.emb.weight.T

PRESETS = dict(tinyh2=(32, 64, 2, 2, 2), tinyh2kv1=(32, 64, 2, 2, 1), tiny48h2=(48, 128, 2, 2, 2), tiny48h3=(48,128,2,3,3), tiny3h2=(32,96,3,2,2), tiny=(32, 64, 2, 4, 2), toy=(64, 176, 3, 4, 2), tiny2=(48, 128, 2, 4, 2), tiny3=(32, 96, 3, 4, 2), toy4=(64, 176, 4, 4, 2), toyh8=(64, 176, 3, 8, 4))

@torch.no_grad()
def greedy(model, prompts, maxnew):
    # prompts same length list of id lists
    X = torch.tensor(prompts)
    out = [[] for _ in prompts]; done = [False] * len(prompts)
    for _ in range(maxnew):
        nxt = model(X)[:, -1].argmax(-1)
        for i, t in enumerate(nxt.tolist()):
            if not done[i]:
                out[i].append(t)
                if t < 3 or t == ID['\n']: done[i] = True
        X = torch.cat([X, nxt[:, None]], 1)
        if all(done): break
    return out

def dec(ids):
    return ''.join(VOCAB[i] for i in ids)

def cut(s):
    for stop in ['<', '\n']:
        j = s.find(stop)
        if j >= 0: s = s[:j]
    return s

@torch.no_grad()
def evaluate(model, name, d, split, n=256, seed=123, text=False, budget=16):
    t = Task(name, d); rng = random.Random(seed)
    eps = [t.episode(rng, split) for _ in range(n)]
    def txt(pieces): return ''.join(p[0] for p in pieces)
    correct = 0
    groups = {}
    if not text:
        prompts = [enc('<bos>' + ''.join(txt(p) for p in e['parts']) + CUE()) for e in eps]
    else:
        # senders decode in order
        nparts = len(eps[0]['parts']); fin = nparts - 1
        msgs = [[None] * nparts for _ in eps]
        for role in range(fin):
            ps = []
            for i, e in enumerate(eps):
                if name == 'relay': inc = [msgs[i][role - 1]] if role > 0 else []
                else: inc = []
                ps.append(enc('<bos>' + ''.join(f'msg:{m}\n' for m in inc) + txt(e['parts'][role]) + 'msg:'))
            res = batched_greedy(model, ps, budget)
            for i, r in enumerate(res): msgs[i][role] = cut(dec(r))
        prompts = []
        for i, e in enumerate(eps):
            inc = [msgs[i][fin - 1]] if name == 'relay' else msgs[i][:fin]
            prompts.append(enc('<bos>' + ''.join(f'msg:{m}\n' for m in inc) + txt(e['parts'][fin]) + CUE()))
    res = batched_greedy(model, prompts, 8)
    for e, r in zip(eps, res):
        if cut(dec(r)) == e['answer']: correct += 1
    return correct / n

def batched_greedy(model, prompts, maxnew):
    by = {}
    for i, p in enumerate(prompts): by.setdefault(len(p), []).append(i)
    out = [None] * len(prompts)
    for L, idx in by.items():
        r = greedy(model, [prompts[i] for i in idx], maxnew)
        for i, x in zip(idx, r): out[i] = x
    return out

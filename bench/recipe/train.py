# One recipe run of the search tool (bench/recipe/README.md): prints a JSON line per evaluation.
import argparse, json, time, math, random, sys
import torch
sys.path.insert(0, __import__('os').path.dirname(__file__))
from lab import *
p = argparse.ArgumentParser()
p.add_argument('--preset', default='tiny'); p.add_argument('--steps', type=int, default=3000); p.add_argument('--lr', type=float, default=3e-3)
p.add_argument('--batch', type=int, default=32); p.add_argument('--tasks', default='lookup:1,lookup:2'); p.add_argument('--mix', default='skyline:1')
p.add_argument('--extra-q', type=int, default=0); p.add_argument('--no-mask', action='store_true'); p.add_argument('--w-ans', type=float, default=1.0)
p.add_argument('--eval', default='lookup:1,lookup:2'); p.add_argument('--eval-every', type=int, default=500); p.add_argument('--seed', type=int, default=1)
p.add_argument('--wd', type=float, default=0.01); p.add_argument('--text', action='store_true'); p.add_argument('--warmup', type=int, default=100)
p.add_argument('--tag', default=''); p.add_argument('--qmode', default='ans'); p.add_argument('--std', type=float, default=0.02)
a = p.parse_args()
QF['mode'] = a.qmode; torch.manual_seed(a.seed); torch.set_num_threads(1)
tasks = [(t.split(':')[0], int(t.split(':')[1])) for t in a.tasks.split(',')]
tw = [float(t.split(':')[2]) if len(t.split(':')) > 2 else 1.0 for t in a.tasks.split(',')]
mix = {k.split(':')[0]: float(k.split(':')[1]) for k in a.mix.split(',')}
evals = [(t.split(':')[0], int(t.split(':')[1])) for t in a.eval.split(',')]
D, I, L, H, Hkv = PRESETS[a.preset]
model = LM(D, I, L, H, Hkv, std=a.std)
nparam = sum(p.numel() for p in model.parameters())
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=a.wd)
corpus = Corpus(tasks, a.seed, mix, a.extra_q, not a.no_mask, a.w_ans, tw)
t0 = time.time()
def lr_at(s):
    if s < a.warmup: return a.lr * (s + 1) / a.warmup
    return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - a.warmup) / max(1, a.steps - a.warmup))))
tok = 0; hist = []
for s in range(a.steps):
    for g in opt.param_groups: g['lr'] = lr_at(s)
    X, Y, W = corpus.batch(a.batch)
    tok += X.numel()
    logits = model(X)
    l = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1), reduction='none', ignore_index=-100)
    Wf = W.reshape(-1) * (Y.reshape(-1) != -100)
    loss = (l * Wf).sum() / Wf.sum().clamp(min=1)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    if (s + 1) % a.eval_every == 0 or s + 1 == a.steps:
        model.eval()
        res = {f'{n}{d}': round(evaluate(model, n, d, 'heldout', 256), 3) for n, d in evals}
        if s + 1 == a.steps:
            res.update({f'ood-{n}{d}': round(evaluate(model, n, d, 'ood', 256), 3) for n, d in evals})
            if a.text: res.update({f'text-{n}{d}': round(evaluate(model, n, d, 'heldout', 256, text=True), 3) for n, d in evals})
        model.train()
        print(json.dumps(dict(tag=a.tag, step=s + 1, loss=round(loss.item(), 4), tok=tok, sec=round(time.time() - t0, 1), **res)), flush=True)
print(json.dumps(dict(tag=a.tag, done=True, args=vars(a), params=nparam, sec=round(time.time() - t0, 1))), flush=True)

# Prints the recipe-search table of bench/recipe/README.md from results.json (every run's arguments
# and its evaluations: held-out greedy skyline accuracy per task and difficulty, at each step).
import json, os
runs = json.load(open(os.path.join(os.path.dirname(__file__), 'results.json')))
def at(r, step, key):
    for e in r['evals']:
        if e['step'] == step and key in e: return f"{e[key]:.2f}"
    return ''
print('| run | model | format | mask | copy (send) | quiz | wd | seed | lookup d1 / d2 @2k | @4k | @6k | last (step) | complete |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
for r in runs:
    a = r['args'] or {}
    last = r['evals'][-1] if r['evals'] else {}
    lk = lambda s: f"{at(r, s, 'lookup1')} / {at(r, s, 'lookup2')}" if at(r, s, 'lookup1') else ''
    fmt = a.get('qmode', 'ans')
    mix = a.get('mix', '')
    send = next((x.split(':')[1] for x in mix.split(',') if x.startswith('send:')), '0')
    keys = [k for k in last if k not in ('tag', 'step', 'loss', 'tok', 'sec')]
    print(f"| {r['tag']} | {a.get('preset', '')} | {fmt} | {'no' if a.get('no_mask') else 'yes'} | {send} | {a.get('extra_q', '')} | {a.get('wd', '')} | {a.get('seed', '')} | {lk(2000)} | {lk(4000)} | {lk(6000)} | "
          + ', '.join(f"{k} {last[k]:.2f}" for k in keys if isinstance(last[k], float) and not k.startswith('ood') and not k.startswith('text')) + f" ({last.get('step', '')}) | {'yes' if r['complete'] else 'stopped'} |")

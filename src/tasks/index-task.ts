// The index task (issue 22): a task where the channels can differ. The sender sees a dense array of
// n digits in fixed order; the receiver holds a position i and answers digit i. There are no keys to
// bind (lookup's table carries its keys in the message, index's array carries only values), so a
// message of B tokens must carry n digits' worth of entropy and any text protocol is bounded well below
// 1 at small B (src/mas/bounds.ts: Fano and the Hamming-sphere ceiling).
//
// FORMAT (tasks.ts's conventions), roles: array -> asker (final), a star
//   part 0  "arr:30571942"   n digits, each uniform and independent, position i is digit i
//   part 1  "idx:3"          which digit is asked (1-based, uniform)
//   answer  "5"              chance 1/10
//   difficulty 1..5 = arrays of 2, 3, 4, 6, 8 digits: lookup's table sizes, so index dX is lookup dX
//   with the keys taken away (n = 4 is d3, n = 8 is d5); ood = 2 digits more
//   message content of the array holder: the array "30571942"
//
// SPLITS as every task's (tasks.ts SPLITS): the content key is the array itself, its hash (salted
// "split:index") puts it in train or heldout; ood arrays are of the heldout partition too.
// In what sense ood is ood: for the run's adapters (trained at d) 2 more digits are an unseen length
// and unseen positions (d5 ood asks "idx:9" and "idx:10", never asked in training). For the base,
// index is out of distribution at every split: no shipped base was pretrained on it (the pretraining
// corpus covers lookup, relay and arith: tasks.ts PRETRAINED_TASK_NAMES), so its cues and format are
// new to it and only trained methods (and the base's generic copying) can read them.
//
// Pure TypeScript: no DOM, no Node API.
import type { Draw, Spec, TaskQuery } from './tasks';

const DIGITS = '0123456789'.split('');
/** Array lengths per difficulty: lookup's table sizes. */
export const INDEX_SIZES = [2, 3, 4, 6, 8];
export const INDEX_OOD_EXTRA = 2;

/** The array length of a difficulty's distribution. */
export function indexSize(d: number, ood: boolean): number {
  return INDEX_SIZES[d - 1] + (ood ? INDEX_OOD_EXTRA : 0);
}

function indexDraw(array: string, i: number): Draw {
  return { key: `${array}@${i}`, contentKey: array, contents: [array, String(i)], messages: [array, ''], answer: array[i - 1] };
}

export const indexSpec: Spec = {
  name: 'index',
  description: 'Index: the array holder knows a dense array of digits in fixed order, the final agent knows which position is asked (no keys to bind).',
  flow: 'star',
  roles: [
    { name: 'array', part: 0, cue: 'arr:', description: 'holds the digit array, e.g. arr:3057' },
    { name: 'asker', part: 1, cue: 'idx:', description: 'holds which digit is asked (1-based), e.g. idx:3; answers that digit' },
  ],
  chance: () => 1 / 10,
  answerSet: () => DIGITS.slice(),
  bounds(d, split) {
    const n = indexSize(d, split === 'ood');
    return { contents: [n, String(n).length], messages: [n, 0], answer: 1, queries: n };
  },
  draw(rng, d, ood) {
    const n = indexSize(d, ood);
    let array = '';
    for (let k = 0; k < n; k++) array += DIGITS[rng.int(0, 10)];
    return indexDraw(array, rng.int(1, n + 1));
  },
  universe(d, ood) {
    const n = indexSize(d, ood);
    return 10 ** n * n;
  },
  enumerate(d, ood, keep) {
    // arrays counting up (first digit most significant), then positions
    const n = indexSize(d, ood);
    const out: Draw[] = [];
    for (let v = 0; v < 10 ** n; v++) {
      const array = String(v).padStart(n, '0');
      if (!keep(array)) continue;
      for (let i = 1; i <= n; i++) out.push(indexDraw(array, i));
    }
    return out;
  },
  queries([array]): TaskQuery[] {
    return [...array].map((ch, i) => ({ content: String(i + 1), answer: ch, key: `${array}@${i + 1}` }));
  },
};

// Refuses the regular expressions of a tokenizer.json that can backtrack catastrophically (issue 20
// item 10). @huggingface/tokenizers runs a Split pre-tokenizer's or a Replace normalizer's {"Regex": ...}
// with the JavaScript engine, which backtracks: `(a+)+$` on 25 letters and a "!" took 11.6 s, on 77 it
// did not finish, and a worker stuck in a match cannot be interrupted. The classic exponential shape is
// a repetition of something that can itself match in several ways: a repeated group that holds a
// repetition (`(a+)+`, `(\w+\s?)*`) or alternatives (`(a|aa)+`). Those are refused here, by the
// pattern's text, before the tokenizer is built. The patterns published tokenizers use (GPT-2's, Llama
// 3's, Qwen2's, Mistral's Tekken, DeepSeek's) repeat only single characters and classes, and pass.
// Left as they are: polynomial shapes such as `\s*\s*$` (quadratic in a text's length, and the engine's
// texts are short prompts).

/** A repetition with no upper bound, or one above this, counts as unbounded. */
const MAX_BOUNDED_REPEAT = 16;

interface Frame {
  start: number;
  /** it contains an unbounded repetition */
  repeats: boolean;
  /** it has alternatives at its own level */
  alternatives: boolean;
}

/**
 * The part of `pattern` that repeats a group which can match in several ways (e.g. "(a+)+"), or null
 * when there is none. Reads JavaScript / Oniguruma syntax: escapes, classes, groups (?:, (?=, (?<name>,
 * (?i: and quantifiers *, +, ?, {n}, {n,}, {n,m} (lazy and possessive forms too).
 */
export function catastrophicPart(pattern: string): string | null {
  const p = pattern;
  const stack: Frame[] = [{ start: 0, repeats: false, alternatives: false }];
  let last: Frame | 'atom' | null = null; // what a quantifier would apply to
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === '\\') {
      // \p{L}, \x{41}, \u{1F600}, \k<name>: one atom with its braces
      const open = p[i + 2];
      const close = open === '{' ? p.indexOf('}', i + 2) : open === '<' && p[i + 1] === 'k' ? p.indexOf('>', i + 2) : -1;
      i = close > 0 ? close + 1 : i + 2;
      last = 'atom';
      continue;
    }
    if (c === '[') {
      let j = i + 1;
      if (p[j] === '^') j++;
      if (p[j] === ']') j++;
      while (j < p.length && p[j] !== ']') j += p[j] === '\\' ? 2 : 1;
      i = j + 1;
      last = 'atom';
      continue;
    }
    if (c === '(') {
      const frame: Frame = { start: i, repeats: false, alternatives: false };
      i++;
      if (p[i] === '?') {
        i++;
        if (p[i] === '<' && (p[i + 1] === '=' || p[i + 1] === '!')) i += 2;
        else if (p[i] === '<' || p[i] === "'") i = Math.max(i, p.indexOf(p[i] === '<' ? '>' : "'", i + 1)) + 1;
        else if (p[i] === ':' || p[i] === '=' || p[i] === '!' || p[i] === '>') i++;
        else {
          while (i < p.length && /[a-zA-Z-]/.test(p[i])) i++; // inline flags: (?i:...) or (?i)
          if (p[i] === ')') {
            i++;
            last = null;
            continue;
          }
          i++;
        }
      }
      stack.push(frame);
      last = null;
      continue;
    }
    if (c === ')') {
      i++;
      if (stack.length > 1) {
        const f = stack.pop()!;
        stack[stack.length - 1].repeats ||= f.repeats;
        last = f;
      } else last = 'atom';
      continue;
    }
    if (c === '|') {
      stack[stack.length - 1].alternatives = true;
      last = null;
      i++;
      continue;
    }
    let q: { end: number; unbounded: boolean } | null = null;
    if (c === '*' || c === '+') q = { end: i + 1, unbounded: true };
    else if (c === '?') q = { end: i + 1, unbounded: false };
    else if (c === '{') {
      const m = /^\{(\d*)(,(\d*))?\}/.exec(p.slice(i, i + 24));
      if (m && (m[1] !== '' || m[3])) {
        const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
        q = { end: i + m[0].length, unbounded: max > MAX_BOUNDED_REPEAT };
      }
    }
    if (q && last !== null) {
      let end = q.end;
      if (p[end] === '?' || p[end] === '+') end++; // lazy or possessive
      if (q.unbounded && last !== 'atom' && (last.repeats || last.alternatives)) return p.slice(last.start, end);
      if (q.unbounded) stack[stack.length - 1].repeats = true;
      i = end;
      last = null;
      continue;
    }
    last = 'atom';
    i++;
  }
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Throws for the first {"Regex": ...} of a tokenizer.json (outside its vocabulary) that
 * catastrophicPart finds, naming where it is; `fail` makes the error.
 */
export function checkPatterns(json: Record<string, unknown>, fail: (message: string) => never): void {
  const walk = (v: unknown, where: string): void => {
    if (Array.isArray(v)) v.forEach((x, k) => walk(x, `${where}[${k}]`));
    else if (isObject(v)) {
      if (typeof v.Regex === 'string') {
        const part = catastrophicPart(v.Regex);
        if (part !== null) {
          fail(
            `tokenizer.json: the regular expression ${JSON.stringify(v.Regex)} of its ${where} repeats ${JSON.stringify(part)}, a group that ` +
              'can itself match in several ways: matching it can take exponential time on some texts (catastrophic backtracking), and ' +
              'the tokenizer could hang; this tokenizer is refused (rewrite the group so that each character can be matched only one way)',
          );
        }
      }
      for (const [k, x] of Object.entries(v)) if (k !== 'Regex') walk(x, where ? `${where}.${k}` : k);
    }
  };
  for (const [k, v] of Object.entries(json)) if (k !== 'model' && k !== 'added_tokens') walk(v, k);
}

import { describe, expect, it } from 'vitest';
import { CharTokenizer, DEFAULT_CHARS, defaultTokenizer } from '../src/tokenizers/char';
import { HfTokenizer } from '../src/tokenizers/hf';
import { catastrophicPart } from '../src/tokenizers/regex-check';
import { TASK_NAMES, formatPrompt, formatSkyline, formatTarget, makeTask, sampleEpisodes } from '../src/tasks/tasks';

describe('CharTokenizer', () => {
  const tok = defaultTokenizer();

  it('has pad/bos/eos at 0/1/2 and at most 64 symbols', () => {
    expect(tok.padId).toBe(0);
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.vocabSize).toBe(3 + DEFAULT_CHARS.length);
    expect(tok.vocabSize).toBeLessThanOrEqual(64);
    expect(tok.decode([0, 1, 2])).toBe('<pad><bos><eos>');
    expect(tok.isSpecial(1)).toBe(true);
    expect(tok.isSpecial(3)).toBe(false);
  });

  it('round-trips every character and every id', () => {
    const ids = tok.encode(DEFAULT_CHARS);
    expect(ids).toEqual(Array.from({ length: DEFAULT_CHARS.length }, (_, i) => i + 3));
    expect(tok.decode(ids)).toBe(DEFAULT_CHARS);
    const all = Array.from({ length: tok.vocabSize }, (_, i) => i);
    expect(tok.encode(tok.decode(all))).toEqual(all);
  });

  it('encodes special names inside text and can skip them when decoding', () => {
    const ids = tok.encode('<bos>ask:k\nans:7<eos>');
    expect(ids[0]).toBe(tok.bosId);
    expect(ids[ids.length - 1]).toBe(tok.eosId);
    expect(ids.length).toBe(1 + 'ask:k\nans:7'.length + 1);
    expect(tok.decode(ids)).toBe('<bos>ask:k\nans:7<eos>');
    expect(tok.decode(ids, { skipSpecials: true })).toBe('ask:k\nans:7');
  });

  it('encodes every prompt and target the tasks produce, and round-trips them', () => {
    for (const name of TASK_NAMES) {
      for (const d of [1, 5]) {
        const task = makeTask(name, d);
        for (const split of ['train', 'heldout', 'ood'] as const) {
          for (const ep of sampleEpisodes(task, split, 50, 3)) {
            const texts = [
              formatSkyline(ep) + formatTarget(ep),
              ...ep.parts.map((_, i) => formatPrompt(ep, i, { messages: ep.messages.filter((m) => m) })),
            ];
            for (const text of texts) expect(tok.decode(tok.encode(text))).toBe(text);
          }
        }
      }
    }
  });

  it('refuses a character outside the vocabulary, naming it and its position', () => {
    expect(() => tok.encode('ab:X')).toThrow(/'X' \(U\+0058\) at position 3/);
    expect(() => tok.encode('a\tb')).toThrow(/'\\t' \(U\+0009\) at position 1/);
    expect(() => tok.encode('<boss>')).toThrow(/'<' .*position 0/);
    expect(() => tok.encode('ok é')).toThrow(/'é' \(U\+00E9\) at position 3/);
  });

  it('refuses ids outside the vocabulary when decoding', () => {
    expect(() => tok.decode([1, 99])).toThrow(/id 99 at position 1/);
    expect(() => tok.decode([-1])).toThrow(/outside the vocabulary/);
    expect(() => tok.decode([1.5])).toThrow(/outside the vocabulary/);
  });

  it('toJSON is self-describing and fromJSON restores an identical tokenizer', () => {
    const json = tok.toJSON();
    expect(json.type).toBe('char');
    expect(json.version).toBe(1);
    expect(json.specials).toEqual({ pad: 0, bos: 1, eos: 2 });
    expect(json.vocab.slice(0, 4)).toEqual(['<pad>', '<bos>', '<eos>', '0']);
    const back = CharTokenizer.fromJSON(JSON.parse(JSON.stringify(json)));
    expect(back.toJSON()).toEqual(json);
    const text = '<bos>tbl:a3k7\nask:k\nans:7<eos>';
    expect(back.encode(text)).toEqual(tok.encode(text));
    // the JSON text itself is accepted too
    expect(CharTokenizer.fromJSON(JSON.stringify(json)).vocabSize).toBe(tok.vocabSize);
  });

  it('fromJSON refuses anything else with a clear message', () => {
    const good = tok.toJSON();
    const cases: [unknown, RegExp][] = [
      [null, /expected an object/],
      [[1, 2], /expected an object/],
      ['{not json', /not valid JSON/],
      [{ ...good, type: 'bpe' }, /unsupported tokenizer type "bpe"/],
      [{ ...good, version: 2 }, /unsupported version 2/],
      [{ ...good, vocab: undefined }, /'vocab' must be an array of strings/],
      [{ ...good, vocab: [...good.vocab, 7] }, /'vocab' must be an array of strings/],
      [{ ...good, specials: undefined }, /'specials' must be an object/],
      [{ ...good, specials: { pad: 0, bos: 1 } }, /lacks 'eos'/],
      [{ ...good, specials: { pad: 0, bos: 1, eos: 3 } }, /specials.eos = 3 but vocab\[3\] is "0"/],
      [{ ...good, specials: { pad: 0, bos: 1, eos: 999 } }, /specials.eos must be an id/],
      [{ ...good, vocab: [...good.vocab, 'a'] }, /duplicate character 'a'/],
      [{ ...good, vocab: [...good.vocab, 'ab'] }, /neither one character nor a special name/],
      [{ ...good, vocab: [...good.vocab, '<bos>'] }, /duplicate special <bos>/],
    ];
    for (const [obj, re] of cases) {
      expect(() => CharTokenizer.fromJSON(obj)).toThrow(/^tokenizer\.json: /);
      expect(() => CharTokenizer.fromJSON(obj)).toThrow(re);
    }
  });

  it('a custom vocabulary works through the constructor', () => {
    const t = new CharTokenizer(['<pad>', '<bos>', '<eos>', 'x', 'y'], { pad: 0, bos: 1, eos: 2 });
    expect(t.encode('<bos>xyx<eos>')).toEqual([1, 3, 4, 3, 2]);
    expect(() => t.encode('xz')).toThrow(/'z' \(U\+007A\) at position 1/);
  });
});

// A small BPE tokenizer.json in Hugging Face's layout, for what @huggingface/tokenizers would let through.
function bpe(patch: { vocab?: Record<string, number>; merges?: unknown[]; added?: { id: number; content: string }[]; pre?: unknown } = {}) {
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: (patch.added ?? [{ id: 5, content: '</s>' }]).map((t) => ({ ...t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null, pre_tokenizer: patch.pre ?? null, post_processor: null, decoder: null,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false,
      ignore_merges: false, vocab: patch.vocab ?? { a: 0, b: 1, ab: 2, '0': 3, z: 4, '</s>': 5 }, merges: patch.merges ?? ['a b'],
    },
  };
}
const split = (pattern: string) => ({ type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false }] });

describe('HfTokenizer refuses what @huggingface/tokenizers lets through (issue 20 items 3 and 10)', () => {
  it('a well-formed tokenizer.json reads', () => {
    const tk = new HfTokenizer(bpe(), {}, { eos: 5 });
    expect(tk.encode('ab0')).toEqual([2, 3]);
  });
  it('an id given to two tokens, or an added token on a vocabulary token\'s id', () => {
    expect(() => new HfTokenizer(bpe({ vocab: { a: 0, b: 1, ab: 2, '0': 3, zz: 3, '</s>': 5 } }), {}, { eos: 5 })).toThrow(
      'tokenizer.json: the vocabulary gives id 3 to both "0" and "zz"; an id names one token (decoding 3 would give "0" for either)',
    );
    expect(() => new HfTokenizer(bpe({ added: [{ id: 3, content: '<x>' }] }), {}, { eos: 5 })).toThrow(
      'tokenizer.json: added token "<x>" has id 3, which the vocabulary gives to "0"; an id names one token',
    );
    expect(() => new HfTokenizer(bpe({ vocab: { a: 0, b: -1, ab: 2, '</s>': 5 } }), {}, { eos: 5 })).toThrow(
      'tokenizer.json: the vocabulary\'s token "b" has id -1; a token id is an integer >= 0',
    );
  });
  it('merges that name, or make, a token the vocabulary does not hold (both layouts of merges)', () => {
    expect(() => new HfTokenizer(bpe({ merges: ['a b', 'a q'] }), {}, { eos: 5 })).toThrow(
      'tokenizer.json: merge 2 ("a q") names "q", which is not in the vocabulary',
    );
    expect(() => new HfTokenizer(bpe({ merges: [['b', 'a']] }), {}, { eos: 5 })).toThrow(
      'tokenizer.json: merge 1 (["b","a"]) makes "ba", which is not in the vocabulary',
    );
    expect(() => new HfTokenizer(bpe({ merges: ['a b c'] }), {}, { eos: 5 })).toThrow('tokenizer.json: merge 1 ("a b c") is not two tokens ("a b" or ["a", "b"])');
  });
  it('a pre-tokenizer pattern that backtracks catastrophically is refused, naming where it is; published patterns pass', () => {
    expect(() => new HfTokenizer(bpe({ pre: split('(a+)+$') }), {}, { eos: 5 })).toThrow(
      'tokenizer.json: the regular expression "(a+)+$" of its pre_tokenizer.pretokenizers[0].pattern repeats "(a+)+", a group that can itself match in several ways',
    );
    expect(catastrophicPart('x(?:\\w+\\s?)*y')).toBe('(?:\\w+\\s?)*');
    expect(catastrophicPart('(a|aa)+b')).toBe('(a|aa)+');
    expect(catastrophicPart('((a)+){2,}')).toBe('((a)+){2,}');
    expect(catastrophicPart('(?<w>a*)+?')).toBe('(?<w>a*)+?');
    const published = {
      'GPT-2': "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
      'Llama 3': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      'Qwen2': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      o200k: "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      'DeepSeek-V3': "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    };
    for (const [name, re] of Object.entries(published)) {
      expect(catastrophicPart(re), name).toBeNull();
      expect(() => new HfTokenizer(bpe({ pre: split(re) }), {}, { eos: 5 }), name).not.toThrow();
    }
  });
});

// The chat rendering (src/tasks/chat-render.ts): the template over the word rendering's text, the
// answer-extraction rule, the refusal of a model without a template, and which renderings a model is
// offered. Its token ids against transformers' apply_chat_template: python/tests/test_chat_render.py.
import { describe, expect, it } from 'vitest';
import {
  CHAT_ANSWER_SLACK, ChatTemplate, chatExtract, chatRendering, chatRenderingFromConfig, chatTemplateOf, cutAtEndOfTurn, hasChatTemplate, renderingsFor,
} from '../src/tasks/chat-render';
import { EXPERIMENT_PRESETS } from '../src/mas/presets';
import { rendering, WORD_RENDERING } from '../src/tasks/render';
import { makeTask, sampleEpisodes } from '../src/tasks/tasks';
import { defaultTokenizer } from '../src/tokenizers/char';
import { HfTokenizer } from '../src/tokenizers/hf';
import { byteLevelBpe } from './hf-fixtures';

// SmolLM2-135M-Instruct's template, as its tokenizer_config.json holds it
const SMOLLM2 =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI " +
  "assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + " +
  "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const LLAMA3 =
  "{{- bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + " +
  "message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}" +
  "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
const SYSTEM = '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n';
const smolConfig = { chat_template: SMOLLM2, bos_token: '<|im_start|>', eos_token: { content: '<|im_end|>', special: true } };

describe('chat template', () => {
  it('renders one user turn with the generation prompt, as SmolLM2 reads it', () => {
    const t = new ChatTemplate(smolConfig);
    expect(t.render([{ role: 'user', content: 'Question: key?\nAnswer:' }], true)).toBe(
      `${SYSTEM}<|im_start|>user\nQuestion: key?\nAnswer:<|im_end|>\n<|im_start|>assistant\n`,
    );
    expect(t.render([{ role: 'user', content: 'hi' }], false)).toBe(`${SYSTEM}<|im_start|>user\nhi<|im_end|>\n`);
    expect(t.endOfTurn).toBe('<|im_end|>');
  });

  it('passes the config special tokens as their text (Llama 3 opens with bos_token) and finds its end of turn', () => {
    const t = new ChatTemplate({ chat_template: LLAMA3, bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' });
    expect(t.render([{ role: 'user', content: ' x \n' }], true)).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(t.endOfTurn).toBe('<|eot_id|>');
  });

  it('takes the "default" of a list of named templates', () => {
    const config = { chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: SMOLLM2 }] };
    expect(chatTemplateOf(config)).toBe(SMOLLM2);
    expect(chatTemplateOf({ chat_template: [{ name: 'tool_use', template: 'T' }] })).toBeNull();
  });

  it('refuses a model without a chat template, naming the file', () => {
    for (const config of [{}, { chat_template: '' }, null]) {
      expect(() => chatRenderingFromConfig(config)).toThrow(/tokenizer_config\.json has no "chat_template"/);
    }
    expect(() => new ChatTemplate({ chat_template: '{% for %}' })).toThrow(/tokenizer_config\.json: its chat_template cannot be parsed/);
    expect(() => new ChatTemplate({ chat_template: "{{ raise_exception('only user turns') }}" }).render([], true)).toThrow(/failed to render: .*only user turns/);
  });
});

describe('chat rendering', () => {
  const r = chatRenderingFromConfig(smolConfig);
  const task = makeTask('lookup', 1);
  const ep = sampleEpisodes(task, 'heldout', 1, 3)[0];

  it('wraps the word rendering text (without <bos>) in the template; the answer is the assistant turn', () => {
    const word = WORD_RENDERING.prompt(ep, task.finalRole, { final: true, messages: ['3 x'] });
    expect(word.startsWith('<bos>')).toBe(true);
    expect(r.prompt(ep, task.finalRole, { final: true, messages: ['3 x'] })).toBe(
      `${SYSTEM}<|im_start|>user\n${word.slice(5)}<|im_end|>\n<|im_start|>assistant\n`,
    );
    expect(r.skyline(ep)).toBe(`${SYSTEM}<|im_start|>user\n${WORD_RENDERING.skyline(ep).slice(5)}<|im_end|>\n<|im_start|>assistant\n`);
    expect(r.prompt(ep, 0, { send: true })).toContain('\nMessage:<|im_end|>\n<|im_start|>assistant\n');
    expect(r.target(ep)).toBe(`${ep.answer}<eos>`);
    expect(r.head).toBe(`${SYSTEM}<|im_start|>user\n`);
    expect(r.prompt(ep, task.finalRole, { final: true, messages: ['3 x'] }).startsWith(`${r.head}Message:3 x\n`)).toBe(true);
    expect(() => chatRenderingFromConfig({ chat_template: '{{ bos_token }}hello' })).toThrow(/does not write the user's message/);
    expect(r.maxAnswerChars(task)).toBe(task.maxAnswerLength + CHAT_ANSWER_SLACK);
    expect(r.part(ep, 0)).toBe(WORD_RENDERING.part(ep, 0));
    expect(r.message).toBe(WORD_RENDERING.message);
  });

  it('scores the decoded text by the extraction rule', () => {
    expect(r.isCorrect(ep, `${ep.answer}<|im_end|>`)).toBe(true);
    expect(r.isCorrect(ep, ` ${ep.answer}.`)).toBe(true);
    expect(r.isCorrect(ep, `The answer is: ${ep.answer}.<|im_end|>`)).toBe(true);
    expect(r.isCorrect(ep, `Answer: key`)).toBe(false);
  });

  it('is made from an engine tokenizer that carries tokenizer_config.json, and refused for one without a template', () => {
    const made = byteLevelBpe();
    const withTemplate = new HfTokenizer(made.json, { ...made.config, chat_template: SMOLLM2 });
    const plain = new HfTokenizer(made.json, made.config);
    const char = defaultTokenizer();
    expect(chatRendering(withTemplate).chat('hi')).toBe(`${SYSTEM}<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n`);
    expect(() => chatRendering(plain)).toThrow(/tokenizer_config\.json has no "chat_template"/);
    expect(() => chatRendering(char)).toThrow(/character tokenizer/);
    // what the page offers: chat only for a model with a template
    expect(renderingsFor(withTemplate)).toEqual(['char', 'word', 'chat']);
    expect(renderingsFor(plain)).toEqual(['char', 'word']);
    expect(renderingsFor(char)).toEqual(['char', 'word']);
    expect(renderingsFor(null)).toEqual(['char', 'word']);
    expect(hasChatTemplate(withTemplate)).toBe(true);
    // render.ts's rendering() by name: chat from the tokenizer, the others as they were
    expect(rendering('chat', withTemplate).prompt(ep, 0, { send: true })).toBe(chatRendering(withTemplate).prompt(ep, 0, { send: true }));
    expect(() => rendering('chat')).toThrow(/chat rendering is made from the model's tokenizer/);
    expect(() => rendering('chat', plain)).toThrow(/tokenizer_config\.json has no "chat_template"/);
    expect(rendering('word', withTemplate)).toBe(WORD_RENDERING);
  });
});

// (decoded, answer) with the stops <|im_end|> and END; python/tests/test_chat_render.py holds the port to the same table
const EXTRACTION_CASES: [string, string][] = [
  ['7', '7'], [' 7.', '7'], ['7<|im_end|>', '7'], ['-12<|im_end|>', '-12'], ['- 12', '12'], ['a - b = -12', '-12'], ['x', 'x'], ['x.', 'x'],
  ['The answer is 7.', '7'], ['The answer is: o.<|im_end|>', 'o'], ['The 3rd letter is x', 'x'], ['The answer is "egg."<|im_end|>', ''],
  ['The letter "v" is a special', 'a'], ['<|im_end|>', ''], ['', ''], ['\n7', ''], ['4 2', '2'], ['a-3', '3'], ['key-7', '7'], ['42abc', '42'],
  ['7<eos>', '7'], ['<eos>7', ''], [' END 7', ''], ['\u00e97', '7'], ['  **9**', '9'], ['7\n8', '7'], ['I think 5', '5'],
];

describe('answer extraction rule', () => {
  const stops = ['<|im_end|>', 'END'];
  it.each(EXTRACTION_CASES)('%j gives %j', (decoded, want) => {
    expect(chatExtract(decoded, stops)).toBe(want);
  });

  it('cuts at the first end of turn, special or line end', () => {
    expect(cutAtEndOfTurn('ab<|im_end|>cd', ['<|im_end|>'])).toBe('ab');
    expect(cutAtEndOfTurn('abENDcd', ['END'])).toBe('ab');
    expect(cutAtEndOfTurn('ab\ncd', [])).toBe('ab');
    expect(cutAtEndOfTurn('ab<x>cd', [])).toBe('ab');
  });
});

describe('real-model preset', () => {
  it('real-small runs a Hub model at a tenth of the toys\u2019 lr, and the toy presets are as they were', () => {
    const { tiny, default: toy, 'real-small': real } = EXPERIMENT_PRESETS;
    expect(real).toMatchObject({ model: 'hf:HuggingFaceTB/SmolLM2-135M-Instruct', lr: 3e-4, steps: 150, batch: 8, evalSize: 100, rank: 8 });
    expect(real.lr).toBeCloseTo(toy.lr / 10, 12);
    // a running experiment depends on these
    expect(tiny).toMatchObject({ model: 'public/models/tiny', steps: 200, batch: 32, lr: 3e-3, rank: 8, evalSize: 256, latentSteps: 4, textBudget: 16 });
    expect(toy).toMatchObject({ model: 'public/models/toy', steps: 400, batch: 32, lr: 3e-3, rank: 8, evalSize: 512, latentSteps: 4, textBudget: 16 });
  });
});

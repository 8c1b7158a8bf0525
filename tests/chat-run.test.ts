// A run in the chat rendering (issue 23 item 3): the CLI's experiment takes --rendering chat on a model
// whose tokenizer_config.json has a chat template and runs every method on it (text-trained included:
// its message slots follow the template's head, text-channel.ts messageLead); a model without a template
// is refused by name; a run bundle's messagesAt points right after the head.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandExperiment } from '../src/cli/experiment';
import { loadBaseModel, readFolder, writeFolder } from '../src/cli/files';
import { makePlan, promptText } from '../src/mas/data';
import { methodSpec } from '../src/mas/methods';
import { defaultRunConfig } from '../src/mas/run';
import { runBundleContent } from '../src/mas/run-data';
import { textSlots, textTrainedPrompt } from '../src/mas/text-channel';
import { presetForTask } from '../src/mas/topology';
import { chatRendering } from '../src/tasks/chat-render';
import { RENDERINGS } from '../src/tasks/render';
import { evaluationEpisodes, makeTask } from '../src/tasks/tasks';
import { HfTokenizer } from '../src/tokenizers';
import { hasChatTemplateFile } from '../src/storage/library';
import { DEFAULT_STATE, parseState, runConfigOf, serializeState, stateOfRunConfig } from '../src/ui/state';
import { byteLevelBpe, hfCheckpoint } from './hf-fixtures';
import { runCaptured } from './cli-helpers';

// SmolLM2-135M-Instruct's template (its tokenizer_config.json), which adds a system turn before the first user turn
const SMOLLM2 =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI " +
  "assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + " +
  "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const METHODS = ['single', 'skyline', 'text', 'text-trained', 'latentmas', 'diffmas'];

function chatTokenizer() {
  const tk = byteLevelBpe();
  return { ...tk, config: { ...tk.config, chat_template: SMOLLM2 } };
}

describe('chat run', () => {
  it('is a rendering a run config takes', () => {
    expect(RENDERINGS).toContain('chat');
  });

  it("the page's rendering field: in the link, additive ('auto' puts none in the run config)", () => {
    expect(DEFAULT_STATE.rendering).toBe('auto');
    expect(runConfigOf(DEFAULT_STATE).rendering).toBeUndefined();
    expect('rendering' in runConfigOf(DEFAULT_STATE)).toBe(false);
    // a link without the field (every link made before it) keeps the model's default
    expect(parseState('#task=relay').state.rendering).toBe('auto');
    for (const r of ['char', 'word', 'chat'] as const) {
      const s = { ...DEFAULT_STATE, rendering: r };
      const hash = serializeState(s);
      expect(hash).toContain(`rendering=${r}`);
      const back = parseState(hash);
      expect(back.problems).toEqual([]);
      expect(back.state.rendering).toBe(r);
      expect(runConfigOf(back.state).rendering).toBe(r);
      expect(stateOfRunConfig(DEFAULT_STATE, runConfigOf(s)).rendering).toBe(r);
    }
    expect(stateOfRunConfig({ ...DEFAULT_STATE, rendering: 'chat' }, runConfigOf(DEFAULT_STATE)).rendering).toBe('auto');
    expect(parseState('#rendering=html').problems).toEqual(['rendering=html: "html" is not one of auto, char, word, chat; auto is used (the default).']);
  });

  it('a stored model is marked as taking chat when its tokenizer_config.json has a template', () => {
    const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
    expect(hasChatTemplateFile(new Map([['tokenizer_config.json', enc(chatTokenizer().config)]]))).toBe(true);
    expect(hasChatTemplateFile(new Map([['tokenizer_config.json', enc(byteLevelBpe().config)]]))).toBe(false);
    expect(hasChatTemplateFile(new Map([['tokenizer_config.json', new TextEncoder().encode('{not json')]]))).toBe(false);
    expect(hasChatTemplateFile(new Map())).toBe(false);
  });

  it('text-trained: message slots right after the template head, the rest of the prompt as the chat text', () => {
    const made = chatTokenizer();
    const tk = new HfTokenizer(made.json, made.config);
    const r = chatRendering(tk);
    const task = makeTask('lookup', 1);
    const spec = methodSpec('text-trained');
    const plan = makePlan(presetForTask(task), spec);
    const fi = plan.length - 1;
    const T = 3;
    const ep = evaluationEpisodes(task, 'heldout', 1, 7)[0];
    const { ids, slots } = textTrainedPrompt(tk, r, ep, plan[fi], spec, T);
    expect(slots).toEqual(textSlots(tk, r, plan, T)[fi]);
    expect(slots[0]).toBe(tk.encode(r.head + r.message.open).length);
    expect(ids.slice(0, slots[0])).toEqual(tk.encode(r.head + r.message.open));
    expect(ids.slice(slots[0], slots[0] + T)).toEqual([tk.padId, tk.padId, tk.padId]);
    // outside the slots, the untrained text receiver's chat prompt (one message, its content cut out)
    const full = promptText(r, ep, plan[fi], spec, []);
    expect(full.startsWith(r.head)).toBe(true);
    expect(tk.decode(ids.slice(slots[0] + T))).toBe(r.message.close + full.slice(r.head.length));
  });

  it("a run bundle's messagesAt is the head's token count", async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'chat-bundle-'));
    const dir = path.join(work, 'm');
    await writeFolder(dir, hfCheckpoint({ type: 'qwen2', dtype: 'F32', tokenizer: chatTokenizer(), tied: true }).files);
    const base = await loadBaseModel(dir);
    const tk = base.tokenizer!;
    const r = chatRendering(tk);
    const task = makeTask('lookup', 1);
    const content = runBundleContent({
      config: { ...defaultRunConfig({ topology: presetForTask(task), modelId: dir, steps: 2, batch: 2, evalSize: 2 }), method: 'text', seed: 1, rendering: 'chat' },
      base, baseFiles: await readFolder(dir), adapters: [], initialAdapters: [], createdBy: 'test', stepsDone: 0, losses: [], evaluation: [], heldout: [], wallSeconds: null, now: new Date(0),
    });
    const at = tk.encode(r.head).length;
    expect(at).toBeGreaterThan(1);
    const receivers = content.episodes.heldout!.flatMap((e) => e.agents).filter((a) => a.messagesAt !== undefined);
    expect(receivers.length).toBeGreaterThan(0);
    for (const a of receivers) {
      expect(a.messagesAt).toBe(at);
      expect(a.prompt.startsWith(r.head)).toBe(true);
      expect(a.ids.slice(0, at)).toEqual(tk.encode(r.head));
    }
  });

  it('experiment --rendering chat runs every method; a model without a template is refused', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'chat-run-'));
    const dir = path.join(work, 'm');
    await writeFolder(dir, hfCheckpoint({ type: 'qwen2', dtype: 'F32', tokenizer: chatTokenizer(), tied: true }).files);
    const json = path.join(work, 'r.json');
    const r = await runCaptured(commandExperiment, [
      '--model', dir, '--preset', 'tiny', '--task', 'lookup', '--methods', METHODS.join(','), '--seeds', '1', '--steps', '2', '--batch', '2',
      '--eval-size', '2', '--latent-steps', '1', '--text-budget', '2', '--controls', 'shuffle', '--json', json, '--rendering', 'chat',
    ]);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(await readFile(json, 'utf8'));
    expect(report.args.rendering).toBe('chat');
    const methods = new Set(report.rows.map((x: { method: string }) => x.method));
    for (const m of METHODS) expect(methods.has(m), `report rows: ${[...methods].join(', ')}`).toBe(true);
    const plain = byteLevelBpe();
    const dir2 = path.join(work, 'plain');
    await writeFolder(dir2, hfCheckpoint({ type: 'qwen2', dtype: 'F32', tokenizer: plain, tied: true }).files);
    await expect(commandExperiment([
      '--model', dir2, '--preset', 'tiny', '--task', 'lookup', '--methods', 'single', '--seeds', '1', '--steps', '1', '--batch', '2', '--eval-size', '2', '--rendering', 'chat',
    ])).rejects.toThrow(/chat_template/);
  }, 600_000);
});

// The command line on Hugging Face folders the test writes (tests/hf-fixtures.ts): generate with --ids
// on a checkpoint without tokenizer.json and with --prompt through a BPE tokenizer.json, the
// experiment on a sharded BF16 Qwen3, and pretrain --init-from a Qwen2 (its config and tokenizer kept).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandExperiment } from '../src/cli/experiment';
import { commandGenerate } from '../src/cli/generate';
import { commandPretrain } from '../src/cli/pretrain';
import { loadBaseModel, writeFolder } from '../src/cli/files';
import { byteLevelBpe, hfCheckpoint, sentencepieceBpe, type FixtureOptions } from './hf-fixtures';
import { runCaptured } from './cli-helpers';

const work = mkdtemp(path.join(tmpdir(), 'cli-hf-'));
afterAll(async () => rm(await work, { recursive: true, force: true }));

async function folder(name: string, o: FixtureOptions): Promise<string> {
  const dir = path.join(await work, name);
  await writeFolder(dir, hfCheckpoint(o).files);
  return dir;
}

describe('CLI on Hugging Face folders', () => {
  it('generate --ids needs no tokenizer.json; --prompt without one says to use --ids', async () => {
    const dir = await folder('llama-no-tok', { type: 'llama', dtype: 'BF16', tokenizer: null, shards: 2 });
    const r = await runCaptured(commandGenerate, ['--model', dir, '--ids', '1,5,9', '--max-new-tokens', '4']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out);
    expect(out.prompt).toBeNull();
    expect(out.ids).toHaveLength(4);
    await expect(commandGenerate(['--model', dir, '--prompt', 'hello'])).rejects.toThrow(/has no tokenizer.json: give the prompt as token ids with --ids/);
  });

  it('generate --prompt encodes with the model\u2019s tokenizer.json (sentencepiece-style Llama, byte-level Qwen2)', async () => {
    for (const [name, o] of [
      ['llama-sp', { type: 'llama', dtype: 'F16', tokenizer: sentencepieceBpe() }],
      ['qwen2-bpe', { type: 'qwen2', dtype: 'BF16', tokenizer: byteLevelBpe(), tied: true }],
    ] as [string, FixtureOptions][]) {
      const dir = await folder(name, o);
      const r = await runCaptured(commandGenerate, ['--model', dir, '--prompt', '<bos>Table: apple=3, kiwi=7.\\nQuestion: kiwi?\\nAnswer:', '--max-new-tokens', '3']);
      expect(r.code, r.err).toBe(0);
      const out = JSON.parse(r.out);
      expect(out.prompt).toContain('Table: apple=3, kiwi=7.\nQuestion: kiwi?\nAnswer:');
      expect(typeof out.continuation).toBe('string');
      expect(out.ids.length).toBeGreaterThan(0);
    }
  });

  it('experiment runs on a sharded BF16 Qwen3 with a BPE tokenizer (word rendering)', async () => {
    const dir = await folder('qwen3', { type: 'qwen3', dtype: 'BF16', tokenizer: byteLevelBpe(), shards: 2 });
    const json = path.join(await work, 'qwen3-report.json');
    const r = await runCaptured(commandExperiment, [
      '--model', dir, '--preset', 'tiny', '--task', 'lookup', '--methods', 'single,latentmas,diffmas', '--seeds', '1', '--steps', '2', '--batch', '2',
      '--eval-size', '2', '--latent-steps', '1', '--controls', 'shuffle', '--json', json, '--quiet',
    ]);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(await readFile(json, 'utf8'));
    expect(report.rows.map((x: { method: string }) => x.method)).toEqual(expect.arrayContaining(['single', 'latentmas', 'diffmas']));
    expect(report.args.baseSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(report.args.vocabSize).toBe(hfCheckpoint({ type: 'qwen3', tokenizer: byteLevelBpe() }).config.vocab_size);
    await expect(commandExperiment(['--model', dir, '--rendering', 'prose'])).rejects.toThrow(/--rendering must be char, word or chat/);
  });

  it('pretrain --init-from continues a Qwen2 checkpoint: its config and tokenizer are kept, its weights move', async () => {
    const src = await folder('qwen2-init', { type: 'qwen2', dtype: 'F16', tokenizer: byteLevelBpe(), tied: true });
    const out = path.join(await work, 'qwen2-pretrained');
    const r = await runCaptured(commandPretrain, ['--init-from', src, '--preset', 'tiny', '--steps', '2', '--batch', '2', '--out', out, '--probe-every', '0', '--no-eval', '--log-every', '1']);
    expect(r.code, r.err).toBe(0);
    const before = await loadBaseModel(src);
    const after = await loadBaseModel(out);
    expect(after.config).toEqual({ ...before.config, torch_dtype: 'float32' });
    expect(after.tokenizer?.toJSON()).toEqual(before.tokenizer?.toJSON());
    const name = 'model.layers.0.self_attn.q_proj.bias';
    expect(after.weights.get(name)).not.toEqual(before.weights.get(name));
    const args = JSON.parse(await readFile(path.join(out, 'training_args.json'), 'utf8'));
    expect(args.initFrom).toBe(src);
    const noTok = await folder('llama-no-tok-2', { type: 'llama', tokenizer: null });
    await expect(commandPretrain(['--init-from', noTok, '--steps', '1', '--out', path.join(await work, 'x')])).rejects.toThrow(/has no tokenizer.json: the corpus is text/);
  });
});

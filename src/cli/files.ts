// Node-side file helpers for the CLI: a folder of Hugging Face / PEFT files <-> Map<name, bytes>.
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeCheckpoint, encodeCheckpoint } from '../storage/checkpoint';
import { CharTokenizer } from '../tasks/tokenizer';
import type { BaseModel } from '../mas/types';

export async function readFolder(dir: string): Promise<Map<string, Uint8Array>> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new Error(`${dir} is not a folder`);
  const out = new Map<string, Uint8Array>();
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    if ((await stat(p)).isFile()) out.set(name, new Uint8Array(await readFile(p)));
  }
  return out;
}

export async function writeFolder(dir: string, files: Map<string, Uint8Array>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of files) await writeFile(path.join(dir, name), bytes);
}

/** Loads a base model folder (config.json, model.safetensors, tokenizer.json); refuses what does not fit. */
export async function loadBaseModel(dir: string): Promise<BaseModel> {
  const ck = decodeCheckpoint(await readFolder(dir));
  const tokenizer = CharTokenizer.fromJSON(ck.tokenizer);
  if (tokenizer.vocabSize !== ck.config.vocab_size) {
    throw new Error(`${dir}: tokenizer.json has ${tokenizer.vocabSize} symbols but config.json says vocab_size ${ck.config.vocab_size}`);
  }
  return { id: dir, config: ck.config, weights: ck.tensors, tokenizer };
}

export async function saveBaseModel(dir: string, m: Omit<BaseModel, 'id'>, provenance?: Record<string, unknown>): Promise<void> {
  const files = encodeCheckpoint({ config: m.config, tensors: m.weights, tokenizer: m.tokenizer.toJSON() as unknown as Record<string, unknown> });
  if (provenance) files.set('training_args.json', new TextEncoder().encode(JSON.stringify(provenance, null, 2) + '\n'));
  await writeFolder(dir, files);
}

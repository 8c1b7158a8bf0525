// Names of imported models (issue 21 item 8): from the zip, the folder or the config, never all "imported model".
import { describe, expect, it } from 'vitest';
import { importLabel, modelNameFromConfig, uniqueName } from '../src/storage/import-name';
import { leftOutOfRun, leftOutWords } from '../src/storage/import-leftout';

describe('importLabel', () => {
  it('names one file by its stem', () => {
    expect(importLabel(['SmolLM-135M.zip'])).toBe('SmolLM-135M');
    expect(importLabel(['downloads/qwen2-0_5b-q8_0.gguf'])).toBe('qwen2-0_5b-q8_0');
  });
  it('names the files of one folder by the folder', () => {
    expect(importLabel(['tiny-llama/config.json', 'tiny-llama/model.safetensors', 'tiny-llama/tokenizer.json'])).toBe('tiny-llama');
    expect(importLabel(['a\\config.json', 'a\\model.safetensors'])).toBe('a');
  });
  it('gives nothing for loose files or several folders', () => {
    expect(importLabel(['config.json', 'model.safetensors'])).toBe('');
    expect(importLabel(['a/config.json', 'b/model.safetensors'])).toBe('');
    expect(importLabel(['a/config.json', 'model.safetensors'])).toBe('');
  });
});

describe('modelNameFromConfig', () => {
  it('takes the last part of _name_or_path', () => {
    expect(modelNameFromConfig({ _name_or_path: 'Qwen/Qwen2-0.5B', model_type: 'qwen2' })).toBe('Qwen2-0.5B');
    expect(modelNameFromConfig({ _name_or_path: '/home/me/ckpt/run3/', model_type: 'llama' })).toBe('run3');
  });
  it('falls back to the type and shape', () => {
    expect(modelNameFromConfig({ model_type: 'llama', num_hidden_layers: 4, hidden_size: 64 })).toBe('llama, 4 layers × 64');
    expect(modelNameFromConfig({ model_type: 'qwen3' })).toBe('qwen3');
    expect(modelNameFromConfig({ _name_or_path: '' })).toBe('model');
  });
});

describe('uniqueName', () => {
  it('adds the smallest free number', () => {
    expect(uniqueName('m', [])).toBe('m');
    expect(uniqueName('m', ['m'])).toBe('m (2)');
    expect(uniqueName('m', ['m', 'm (2)', 'm (3)'])).toBe('m (4)');
  });
});

describe('leftOutOfRun', () => {
  const b = (n: number) => new Uint8Array(n);
  it('finds the derived folders of an export, at the root or under one folder', () => {
    const root = new Map([['run.json', b(10)], ['results/record.json', b(20)], ['results/curves.csv', b(100)], ['charts/loss.svg', b(2048)], ['tensorboard/diffmas/seed7/events.out.tfevents.1.page', b(300)], ['adapters/a0/adapter_model.safetensors', b(50)]]);
    const l = leftOutOfRun(root);
    expect(l).toEqual({ folders: ['results', 'charts', 'tensorboard'], files: 3, bytes: 2448 });
    expect(leftOutWords(l)).toBe("Not kept: results/ (CSV tables), charts/ (chart figures), tensorboard/ (TensorBoard event files): 3 files, 2.4 KB; they are made from the record, and the run's export makes them again.");
    const nested = new Map([['myrun/run.json', b(10)], ['myrun/heatmaps/after-step8.png', b(5)]]);
    expect(leftOutOfRun(nested)).toEqual({ folders: ['heatmaps'], files: 1, bytes: 5 });
  });
  it('says nothing when nothing is left out', () => {
    expect(leftOutWords(leftOutOfRun(new Map([['run.json', b(1)], ['results.txt', b(1)]])))).toBe('');
  });
});

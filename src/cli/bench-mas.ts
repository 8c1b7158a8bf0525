// Bench section 'mas': one multi-agent training step (DiffMAS: every agent's LoRA adapter trained
// through the latent messages) with 2 and 4 agents, through the run controller (src/mas/controller.ts)
// as the page drives it, in tokens/s (every pass, every row, as the controller counts them).
// There is no same-run reference: tfjs has no multi-agent engine and the float64 reference of a
// rollout (src/mas/reference.ts) is a gradient oracle, not a training step, so these rows carry no
// ratio; the plain training step of the same base model (section 'train') is the number to read
// them against.
import type { Gpu } from '../gpu/runtime';
import { presetConfig } from '../model/config';
import { initWeights } from '../model/model';
import { toLlamaConfig } from '../model/pretrain';
import { defaultTokenizer } from '../tokenizers/char';
import { makeTask } from '../tasks/tasks';
import type { RunProgress } from '../worker/api';
import type { BaseModel } from '../mas/types';
import { RunController } from '../mas/controller';
import { defaultRunConfig } from '../mas/run';
import { chain, presetForTask, type Topology } from '../mas/topology';
import { makeRow, timeCandidates, type BenchContext, type BenchRow } from './bench-util';

export interface MasBenchOptions {
  preset: string;
  batch: number;
  latentSteps: number;
}

/** The benchmarked topologies: 2 agents (lookup: table -> query), 4 agents (relay as a chain of 4,
 * the middle part held by two relays). */
function topologies(latentSteps: number): { name: string; task: 'lookup' | 'relay'; topology: Topology }[] {
  return [
    { name: '2 agents lookup star', task: 'lookup', topology: presetForTask(makeTask('lookup', 1), { latentSteps }) },
    { name: '4 agents relay chain', task: 'relay', topology: chain(4, { latentSteps, roles: [0, 1, 1, 2] }) },
  ];
}

export async function benchMas(gpu: Gpu, ctx: BenchContext, o: MasBenchOptions): Promise<BenchRow[]> {
  const tokenizer = defaultTokenizer();
  const config = presetConfig(o.preset, tokenizer.vocabSize);
  const base: BaseModel = {
    id: `bench:${o.preset}`, config: toLlamaConfig(config, tokenizer), weights: initWeights(config, 1), tokenizer,
  };
  const rows: BenchRow[] = [];
  for (const t of topologies(o.latentSteps)) {
    const controller = new RunController(gpu);
    let last: RunProgress | null = null;
    try {
      const run = defaultRunConfig({
        topology: t.topology, task: t.task, difficulty: 1, method: 'diffmas', modelId: base.id,
        steps: 100_000, batch: o.batch, evalEvery: 0, seed: 1,
      });
      await controller.prepare(run, base, (p) => (last = p));
      await controller.step(); // builds the rollout of the first prompt-length signature
      const p0 = gpu.pipelinesCompiled;
      const b0 = gpu.buffersCreated;
      const ms = await timeCandidates({ ours: () => controller.step() }, ctx.minMs * 3, ctx.trainRounds);
      const p = last as RunProgress | null;
      if (!p || p.state === 'error' || !(p.stepsPerSecond > 0)) throw new Error(`mas bench (${t.name}): the run did not step: ${p?.message ?? 'no progress'}`);
      const tokensPerStep = Math.round(p.tokensPerSecond / p.stepsPerSecond);
      const row = makeRow('mas', `diffmas ${t.name} B${o.batch}`, 'tokens/s', (tokensPerStep / ms.ours) * 1000, null,
        'none (no multi-agent engine in tfjs)', {
          agents: t.topology.agents.length, latentSteps: o.latentSteps, tokensPerStep, msPerStep: ms.ours,
          // after the first step; rollouts are made once per prompt-length signature, so new signatures show here
          newPipelines: gpu.pipelinesCompiled - p0, newBuffers: gpu.buffersCreated - b0,
        });
      rows.push(row);
    } finally {
      controller.dispose();
      await gpu.sync();
    }
  }
  return rows;
}

// Named settings of the experiment command and the page: topologies by name, and the experiment
// presets (tiny: CI-sized on the tiny base; default: the toy base model; real-small: a ~135M
// pretrained model such as SmolLM2).
import type { Proj } from '../model/config';
import type { Task } from '../tasks/tasks';
import { chain, parseTopology, presetForTask, single, star, twoRound, type Topology } from './topology';

export interface ExperimentPreset {
  /** Base model folder. */
  model: string;
  steps: number;
  batch: number;
  lr: number;
  rank: number;
  targets: Proj[];
  evalSize: number;
  latentSteps: number;
  textBudget: number;
}

export const EXPERIMENT_PRESETS: Record<string, ExperimentPreset> = {
  // CI-sized: the tiny base (d=32, 2 layers), whose skyline and text reach 1.00 on lookup d1-3. At
  // these settings 3 seeds give diffmas 0.51 +- 0.20 held-out against 0.05 for latentmas (whose
  // receiver reads 4 untrained latent positions), the shuffle control 0.09 (bench/EXPERIMENT.md),
  // which tests/experiment.test.ts checks. 3 seeds take about 6 minutes on lavapipe on a 2-core VM.
  tiny: {
    model: 'public/models/tiny', steps: 200, batch: 32, lr: 3e-3, rank: 8,
    targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    evalSize: 256, latentSteps: 4, textBudget: 16,
  },
  // The default toy base (d=64, 3 layers): the grid of bench/EXPERIMENT.md (512 episodes per split,
  // so the binomial error is small next to the gaps; a text budget that holds every message).
  default: {
    model: 'public/models/toy', steps: 400, batch: 32, lr: 3e-3, rank: 8,
    targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    evalSize: 512, latentSteps: 4, textBudget: 16,
  },
  // A real pretrained model of ~135M parameters (issue 23 item 3): SmolLM2-135M-Instruct from the Hub
  // (--model overrides: a GGUF import, a folder). The toys' lr 3e-3 suits LoRA on bases trained here
  // from scratch; on SmolLM2 it gave gradient norms of about 300 (issue 23), far past the clip of 1,
  // a run leaving the pretrained solution. lr 3e-4 (10x lower, the usual LoRA rate for pretrained
  // models of this size), with the run's warmup (a tenth of the steps), keeps the early updates small.
  // Batch 8, 150 steps: on lavapipe a step took 13-16 s and an evaluation episode 27-108 s (issue 23),
  // so this is hours on CPU; on a GPU or in the companion raise --steps. Eval 100 episodes per split,
  // the size the issue measured (binomial s.e. <= 0.05). Text budget 8: a BPE message of a few values.
  // Measured (issue 23 item 5, .cache/real/smollm2-lr.json where it ran: the companion, DiffMAS, lookup
  // d1, chat rendering, batch 4, seed 1, 10 steps at constant lr): at 3e-4 the gradient norms (before
  // the clip of 1) stay 12-54 while the loss falls 11.79 -> 4.51; at 3e-3 they jump to 89 and 133 at
  // steps 3-4 (the issue's ~300 kind of jolt) while the loss drops to the chance level of a digit
  // (1.37-1.74; about 1.15 over the 2 target tokens), then settle at 4-21. So 3e-4 stays: no jolt, and
  // 150 steps leave room for its slower start. 11-23 s a step at batch 4 on 2 busy CPU cores.
  'real-small': {
    model: 'hf:HuggingFaceTB/SmolLM2-135M-Instruct', steps: 150, batch: 8, lr: 3e-4, rank: 8,
    targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    evalSize: 100, latentSteps: 4, textBudget: 8,
  },
};

export const TOPOLOGY_PRESETS: Record<string, string> = {
  preset: "the task's minimum topology (lookup/arith: star, relay: chain)",
  star: 'every other part sends to the final agent',
  chain: 'part 0 -> part 1 -> ... -> final',
  'two-round': 'A -> B -> A\u2032 (two-part tasks)',
  single: 'the final agent alone',
};

/** A topology by preset name or URL form, with every sender given `latentSteps`. */
export function resolveTopology(name: string, task: Pick<Task, 'roles' | 'flow'>, latentSteps: number): Topology {
  const n = task.roles.length;
  const opts = { latentSteps, roles: task.roles.map((r) => r.part), names: task.roles.map((r) => r.name) };
  switch (name) {
    case 'preset':
      return presetForTask(task, { latentSteps });
    case 'star':
      return star(n, opts);
    case 'chain':
      return chain(n, opts);
    case 'two-round':
      if (n !== 2) throw new Error(`topology two-round needs a two-part task, this one has ${n} parts`);
      return twoRound({ latentSteps });
    case 'single':
      return single(task.roles[n - 1].part);
    default:
      if (name.startsWith('v1;')) return parseTopology(name);
      throw new Error(`unknown topology '${name}' (have: ${Object.keys(TOPOLOGY_PRESETS).join(', ')}, or the URL form v1;agents;edges;final)`);
  }
}

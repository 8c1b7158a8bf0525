// The run controller: one multi-agent run on one GPU, driven by the worker (the page) or headless
// (tests, CLI). start/pause/resume/step/stop/reset with progress after every step and evaluation;
// evaluate, inspect and adapters between steps. Every GPU use goes through one queue, so an
// evaluation asked for while training runs between two steps; stop is honoured within one step.
import type { Gpu } from '../gpu/runtime';
import type { Split } from '../tasks/tasks';
import { initialFuser } from './c2c-fuser';
import type { EvalRow, InspectResult, RunConfig, RunCheckpoint, RunProgress, RunState, RunTrainingState } from './run-types';
import type { BaseModel, RunControllerApi, TrainedAdapter } from './types';
import { MasEngine, Run, type EvalOutcome } from './run';
import { probeRun } from './measures';
import type { ProbeReport } from './measure-types';
import { loraKey, type LoraTarget } from '../storage/peft';

/** EvalRow without the per-episode arrays (what crosses to the page). */
export function toEvalRow(o: EvalOutcome): EvalRow {
  const { predictions: _p, correct: _c, ...row } = o;
  return row;
}

/** Writes PEFT-keyed adapter tensors into a run's LoRA modules; refuses a set that does not fit, naming what is missing. */
function loadInto(run: Run, adapters: TrainedAdapter[]): void {
  const keys = [...run.adapters.keys()];
  if (!keys.length) throw new Error(`method ${run.method} has no adapters to load`);
  const pick = (key: string): TrainedAdapter => {
    const a = adapters.find((x) => x.agent === key) ?? (adapters.length === 1 ? adapters[0] : undefined);
    if (!a) throw new Error(`no adapter for ${key === 'shared' ? 'the shared adapter' : `agent ${key}`} among ${adapters.map((x) => x.agent).join(', ') || 'none'}`);
    return a;
  };
  const plan = keys.map((key) => {
    const lora = run.adapters.get(key)!;
    const a = pick(key);
    if (a.config.r !== lora.config.r || a.config.lora_alpha !== lora.config.alpha) {
      throw new Error(`the adapter for ${key} has r=${a.config.r}, alpha=${a.config.lora_alpha}; this run uses r=${lora.config.r}, alpha=${lora.config.alpha}`);
    }
    const weights = new Map<string, { A: Float32Array; B: Float32Array }>();
    for (const m of lora.modules.values()) {
      const A = a.tensors.get(loraKey(m.layer, m.proj as LoraTarget, 'A'));
      const B = a.tensors.get(loraKey(m.layer, m.proj as LoraTarget, 'B'));
      if (!A || !B) throw new Error(`the adapter for ${key} has no ${m.name} (its targets: ${a.config.target_modules.join(', ')})`);
      weights.set(m.name, { A, B });
    }
    // the learned latent slot offsets (config.latentSlotOffset) travel with their adapter
    const offset = run.slotOffsets.get(key);
    if (offset && !a.slotOffset) throw new Error(`the adapter for ${key} has no latent slot offsets (latent_slot_offset.safetensors), which this run (latentSlotOffset) trains`);
    if (!offset && a.slotOffset) {
      throw new Error(`the adapter for ${key} has latent slot offsets, which this run does not use (${run.config.latentSlotOffset ? `${key} runs no latent steps here` : 'turn latentSlotOffset on'})`);
    }
    return { key, lora, weights, offset, saved: a.slotOffset };
  });
  for (const { key, lora, weights, offset, saved } of plan) {
    lora.load(weights);
    if (offset && saved) offset.load(saved, `the adapter for ${key}`);
  }
}

export class RunController implements RunControllerApi {
  private engine: MasEngine | null = null;
  private run: Run | null = null;
  private state: RunState = 'idle';
  private paused = false;
  private stopRequested = false;
  private looping = false;
  private wake: (() => void) | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private onProgress: (p: RunProgress) => void = () => undefined;
  private progress: RunProgress = this.blank();
  private trainSeconds = 0;
  private tokens = 0;

  constructor(readonly gpu: Gpu) {}

  private blank(): RunProgress {
    return {
      state: 'idle', step: 0, totalSteps: 0, loss: NaN, heldoutLoss: null, heldoutAccuracy: null,
      tokensPerSecond: 0, stepsPerSecond: 0, elapsedSeconds: 0,
    };
  }

  /** The latest progress (also sent to the callback). */
  get status(): RunProgress {
    return { ...this.progress };
  }

  /** The current run (tests, the experiment runner). */
  get current(): Run | null {
    return this.run;
  }

  private emit(patch: Partial<RunProgress> = {}): void {
    this.progress = { ...this.progress, ...patch, state: this.state };
    try {
      this.onProgress({ ...this.progress });
    } catch {
      // a progress callback that throws (a closed page) must not end the run
    }
  }

  /** Runs fn after every GPU job queued before it (training steps, evaluations, inspections). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** (A method, so that TypeScript does not narrow the state across awaits.) */
  private get failed(): boolean {
    return this.state === 'error';
  }

  private fail(e: unknown): void {
    this.state = 'error';
    this.emit({ message: e instanceof Error ? e.message : String(e) });
  }

  /** Builds the run (adapters, optimizer) without training: step() can then drive it. */
  async prepare(config: RunConfig, base: BaseModel, onProgress: (p: RunProgress) => void): Promise<void> {
    if (this.looping) throw new Error('a run is in progress: stop or reset it first');
    this.onProgress = onProgress;
    await this.exclusive(async () => {
      this.dropRun();
      if (this.engine && this.engine.base !== base) {
        this.engine.destroy();
        this.engine = null;
      }
      this.engine ??= new MasEngine(this.gpu, base);
      this.run = new Run(this.engine, config);
    });
    this.state = 'paused';
    this.paused = true;
    this.stopRequested = false;
    this.trainSeconds = 0;
    this.tokens = 0;
    this.progress = { ...this.blank(), totalSteps: this.run!.trains ? config.steps : 0 };
    this.emit({ message: undefined });
  }

  async start(config: RunConfig, base: BaseModel, onProgress: (p: RunProgress) => void): Promise<void> {
    const keepPaused = this.paused && this.state === 'idle';
    try {
      await this.prepare(config, base, onProgress);
    } catch (e) {
      this.fail(e);
      throw e;
    }
    this.paused = keepPaused;
    this.state = keepPaused ? 'paused' : 'running';
    this.emit();
    await this.loop();
  }

  private async loop(): Promise<void> {
    const run = this.run!;
    this.looping = true;
    try {
      if (!run.trains) {
        if (!this.stopRequested) await this.exclusive(() => this.evalHeldout());
      }
      while (run.trains) {
        while (this.paused && !this.stopRequested && run.step < run.config.steps && !this.failed) {
          await new Promise<void>((r) => (this.wake = r));
        }
        if (this.failed) return;
        if (this.stopRequested || run.step >= run.config.steps) break;
        await this.exclusive(() => this.oneStep());
        if (this.failed) return;
      }
      if (this.stopRequested) {
        this.state = 'stopped';
        this.emit();
        return;
      }
      if (run.trains && run.config.evalEvery === 0) await this.exclusive(() => this.evalHeldout());
      if (this.failed) return;
      this.state = 'done';
      this.paused = false;
      this.emit();
    } catch (e) {
      this.fail(e);
    } finally {
      this.looping = false;
    }
  }

  /** One step: train, then evaluate when due. Errors (divergence, a lost device) end the run with state 'error'. */
  private async oneStep(): Promise<void> {
    const run = this.run;
    if (!run) throw new Error('no run: call start first');
    if (run.step >= run.config.steps) return;
    try {
      const t0 = performance.now();
      const r = await run.trainStep();
      const dt = (performance.now() - t0) / 1000;
      this.trainSeconds += dt;
      this.tokens += r.tokens;
      this.emit({
        step: r.step, loss: r.loss, tokensPerSecond: r.tokens / dt, stepsPerSecond: 1 / dt, elapsedSeconds: this.trainSeconds,
      });
      const every = run.config.evalEvery;
      if ((every > 0 && r.step % every === 0) || (every > 0 && r.step === run.config.steps)) await this.evalHeldout();
    } catch (e) {
      this.fail(e);
      this.paused = false;
      this.wake?.();
    }
  }

  private async evalHeldout(): Promise<void> {
    const run = this.run!;
    try {
      const o = await run.evaluate('heldout');
      this.emit({ heldoutLoss: o.loss, heldoutAccuracy: o.accuracy, heldoutStep: run.step });
    } catch (e) {
      this.fail(e);
    }
  }

  pause(): void {
    if (this.state === 'running') {
      this.paused = true;
      this.state = 'paused';
      this.emit();
    } else if (this.state === 'idle') this.paused = true;
  }

  resume(): void {
    if (this.state !== 'paused') return;
    this.paused = false;
    if (this.looping) {
      this.state = 'running';
      this.emit();
      this.wake?.();
    } else if (this.run) {
      // prepared but never started: run the loop now
      this.state = 'running';
      this.emit();
      void this.loop();
    }
  }

  async step(): Promise<void> {
    if (!this.run) throw new Error('no run: call start (or prepare) first');
    if (this.state === 'running') throw new Error('step: the run is training; pause it first');
    if (this.state !== 'paused') throw new Error(`step: the run is ${this.state}`);
    if (!this.run.trains) throw new Error(`step: method ${this.run.method} trains nothing`);
    await this.exclusive(() => this.oneStep());
    if (!this.failed && this.run && this.run.step >= this.run.config.steps) {
      if (this.looping) this.wake?.();
      else {
        this.state = 'done';
        this.paused = false;
        this.emit();
      }
    }
  }

  stop(): void {
    this.stopRequested = true;
    if (this.state === 'running' || this.state === 'paused') {
      if (!this.looping) {
        this.state = 'stopped';
        this.emit();
      }
      this.wake?.();
    }
  }

  private dropRun(): void {
    this.run?.destroy();
    this.run = null;
  }

  reset(): void {
    this.stop();
    const drop = () => {
      this.dropRun();
      this.state = 'idle';
      this.paused = false;
      this.stopRequested = false;
      this.progress = this.blank();
      this.emit();
    };
    // after the step in flight (the loop sees stopRequested and ends)
    void this.exclusive(async () => drop());
  }

  /** Frees the run and the base model on the GPU. */
  dispose(): void {
    this.reset();
    void this.exclusive(async () => {
      this.engine?.destroy();
      this.engine = null;
    });
  }

  evaluate(splits: Split[]): Promise<EvalRow[]> {
    return this.exclusive(async () => {
      if (!this.run) throw new Error('no run to evaluate: call start first');
      const out: EvalRow[] = [];
      for (const s of splits) out.push(toEvalRow(await this.run.evaluate(s)));
      return out;
    });
  }

  inspect(split: Split, index: number): Promise<InspectResult> {
    return this.exclusive(async () => {
      if (!this.run) throw new Error('no run to inspect: call start first');
      // the step of the weights it saw: a look asked for while training runs between two later steps
      const step = this.run.step;
      return { ...(await this.run.inspect(split, index)), step };
    });
  }

  /**
   * Loads adapter weights into the run's adapters (a saved adapter set reopened, or the initial
   * weights back for a look): one per adapter key (agent id or 'shared'); a single adapter given
   * for a run with several keys goes into each. Between steps, like every GPU job.
   */
  loadAdapters(adapters: TrainedAdapter[]): Promise<void> {
    return this.exclusive(async () => {
      if (!this.run) throw new Error('no run: call start first');
      loadInto(this.run, adapters);
    });
  }

  /** Inspects one example with other adapter weights (the initial ones: the before-training view of any example), then puts the run's own back. */
  inspectWith(adapters: TrainedAdapter[], split: Split, index: number): Promise<InspectResult> {
    return this.exclusive(async () => {
      if (!this.run) throw new Error('no run to inspect: call start first');
      if (this.run.fuser) {
        // c2c: the before-training view is the initial fuser (A = 0, gate = 0), whatever adapters are given
        const own = await this.run.exportFuser();
        const { L, kvDim } = this.run.engine.model.dims;
        this.run.loadFuser(initialFuser(L, kvDim));
        try {
          return await this.run.inspect(split, index);
        } finally {
          this.run.loadFuser(own!);
        }
      }
      if (!adapters.length || !this.run.adapters.size) return this.run.inspect(split, index);
      const own = await this.run.exportAdapters();
      loadInto(this.run, adapters);
      try {
        return await this.run.inspect(split, index);
      } finally {
        loadInto(this.run, own);
      }
    });
  }

  /**
   * The run's adapters and training state (null for a method that trains nothing), read together
   * between two steps: what continuing it exactly needs.
   */
  checkpoint(): Promise<RunCheckpoint> {
    return this.exclusive(async () => {
      const run = this.run;
      if (!run) throw new Error('no run: call start first');
      return { step: run.step, adapters: await run.exportAdapters(), training: run.trains ? await run.trainingState() : null, ...(run.fuser ? { fuser: await run.exportFuser() } : {}) };
    });
  }

  /**
   * Continues a saved run in this freshly prepared one: its adapters at the step it reached and its
   * training state, so that the steps left give what the run would have given without the break.
   */
  continueFrom(adapters: TrainedAdapter[], state: RunTrainingState, fuser?: Map<string, Float32Array> | null): Promise<void> {
    return this.exclusive(async () => {
      const run = this.run;
      if (!run) throw new Error('no run: call start first');
      if (!run.trains) throw new Error(`method ${run.method} trains nothing: there is nothing to continue`);
      // c2c trains its fuser, not adapters: without it the saved optimizer state would belong to other weights
      if (run.fuser && !fuser) throw new Error('a c2c run continues from its fuser, and none was given');
      if (fuser) run.loadFuser(fuser);
      if (run.adapters.size) loadInto(run, adapters);
      run.restoreTraining(state);
      this.progress = { ...this.progress, step: run.step, loss: state.losses[state.losses.length - 1] ?? NaN };
      this.emit();
    });
  }

  /** Linear probes of the received K/V with the run's adapters now (src/mas/measures.ts), between steps like every GPU job. */
  probe(trainEpisodes?: number): Promise<ProbeReport> {
    return this.exclusive(async () => {
      if (!this.run) throw new Error('no run to probe: call start first');
      return probeRun(this.run, { trainEpisodes });
    });
  }

  adapters(): Promise<TrainedAdapter[]> {
    return this.exclusive(async () => {
      if (!this.run) throw new Error('no run: call start first');
      return this.run.exportAdapters();
    });
  }
}

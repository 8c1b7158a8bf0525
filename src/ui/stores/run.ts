// The live run: progress, the full loss/accuracy history, inspections, evaluation and saving; the
// run loop itself (begin: build, inspect the untrained agents, train, inspect again). Its record
// keeping (autosave, checkpoints, interrupted runs) is in autosave.ts; what the panels show (this run
// or a stored one opened read-only) in shown-run.ts. Plain data only: everything GPU happens in the worker.
import { proxy } from 'comlink';
import { create } from 'zustand';
import type { AdapterData, EvalRowCi, RunConfig, RunCurves, RunProgress, RunRecord, RunState, StoredInspection } from '../../worker/api';
import { withIntervals } from '../../mas/base-eval';
import { continueProblem, curvesUpTo } from '../../mas/run-record';
import { isTrainedMethod } from '../../mas/run-types';
import { newId } from '../../storage/library';
import { DivergenceWatch } from '../../model/divergence';
import { errorText, getEngine } from '../engine';
import { runConfigOf, stateOfRunConfig } from '../state';
import { useApp } from './app';
import { runRecorder } from './autosave';
import { useCompare } from './compare';
import { useLibrary } from './library';

/** The full history of a run (never thinned; charts thin only what they draw). */
export type History = RunCurves;

export interface RunStore {
  state: RunState;
  /** The run is being built and its untrained agents inspected (shown as 'starting'). */
  starting: boolean;
  /** Pause was pressed while starting: stay paused once built. */
  pauseRequested: boolean;
  progress: RunProgress | null;
  /** An error or notice about the run. */
  message: string | null;
  /** Bumped when `history` changes (at most once per frame). */
  version: number;
  history: History;
  /** The configuration the current run was started with (null when idle). */
  config: RunConfig | null;
  /** Inspections taken, the latest per (which, split, example). */
  inspections: StoredInspection[];
  inspectError: string | null;
  inspecting: boolean;
  evalRows: EvalRowCi[] | null;
  evaluating: boolean;
  saving: boolean;
  savedNote: string | null;
  /** The record this run is stored as (made at its start, rewritten every few seconds and at its end). */
  recordId: string | null;
  /** When the run started (ms). */
  startedAt: number | null;
  /** Training seconds of the legs before this one (a continued run's record): the elapsed time goes on from them. */
  priorSeconds: number;
  /** The adapters at step 0 (or as loaded from the library). */
  initial: AdapterData[];
  /** The library adapter set the run started from. */
  loadedFrom: { name: string; ids: string[] } | null;
  /** Library adapters saved from this run. */
  savedAdapters: { id: string; name: string }[];
  /** A stored run opened read-only (its curves, tables and heatmaps replace the live run's on screen). */
  viewing: RunRecord | null;
  /** Start from the seed, or resume a paused run. */
  play(): Promise<void>;
  pause(): Promise<void>;
  /** One training step (starts the run paused when there is none). */
  step(): Promise<void>;
  reset(): Promise<void>;
  /** The setup changed: a finished run's numbers no longer describe it. */
  configChanged(): void;
  /** Inspects the chosen example: 'after' with the run's adapters now, 'before' with its initial ones. */
  inspect(which?: 'before' | 'after', wait?: boolean): Promise<void>;
  evaluate(): Promise<void>;
  save(name: string): Promise<void>;
  /** Builds the run of the current setup with a saved adapter set loaded, paused at step 0 (evaluate, inspect, or train on). */
  openAdapters(ids: string[], name: string): Promise<void>;
  /** Continues a stopped or interrupted run from its record (its adapters and AdamW's state at the step it reached), in the same record. */
  continueRun(id: string): Promise<void>;
  /** Writes the run's record now (with its adapters when `withAdapters`). */
  persist(withAdapters?: boolean): Promise<void>;
  /** Opens a stored run read-only. */
  view(id: string): Promise<void>;
  closeView(): void;
  dismiss(): void;
}

let frame = 0;
let inflight: Promise<void> | null = null;
/** Bumped by every start and reset: callbacks of an older run are ignored. */
let runToken = 0;

const emptyHistory = (): History => ({ steps: [], loss: [], evals: [] });

function exampleKey(split: string, index: number): string {
  return `${split}:${index}`;
}

export const useRun = create<RunStore>((setState, getState) => {
  const bump = () => {
    if (frame) return;
    const raf = typeof requestAnimationFrame !== 'undefined' ? requestAnimationFrame : (f: () => void) => setTimeout(f, 16);
    frame = raf(() => {
      frame = 0;
      setState((s) => ({ version: s.version + 1 }));
    }) as number;
  };

  let divergence = new DivergenceWatch();
  const recorder = runRecorder(getState, setState);
  const persist = recorder.persist;

  const onProgress = (p: RunProgress) => {
    const h = getState().history;
    const last = h.steps[h.steps.length - 1];
    if (p.step > 0 && Number.isFinite(p.loss) && p.step !== last) {
      h.steps.push(p.step);
      h.loss.push(p.loss);
    }
    // a held-out point only where an evaluation was made (heldoutStep), never carried forward
    if (p.heldoutStep !== undefined && p.heldoutStep !== null && (p.heldoutLoss !== null || p.heldoutAccuracy !== null)) {
      const e = h.evals[h.evals.length - 1];
      const point = { step: p.heldoutStep, loss: p.heldoutLoss, accuracy: p.heldoutAccuracy };
      if (!e || e.step !== point.step) h.evals.push(point);
      else h.evals[h.evals.length - 1] = point;
    }
    const patch: Partial<RunStore> = { progress: p, state: getState().starting && p.state === 'paused' ? 'running' : p.state };
    if (p.message) patch.message = errorText(p.message);
    else if (p.step > 0 && p.state === 'running') {
      const diverging = divergence.push(p.step, p.loss);
      if (diverging) patch.message = `Warning: ${diverging}.`;
    }
    setState(patch);
    bump();
    // an error can be reported after the run's promise settled (a lost device is looked for a moment later): the record follows
    if (p.state === 'error' && getState().recordId && !getState().starting) void persist();
  };

  /**
   * Starts the run from the seed: the worker builds it and waits before its first step, the untrained
   * agents are inspected (the "before" view), then training goes on (or, for the step button, exactly
   * one step is taken and the run stays paused; or, with `load`, it waits paused with those adapters).
   */
  const begin = async (mode: 'train' | 'step' | 'hold', load?: { adapters: AdapterData[]; name: string; ids: string[] }, cont?: RunRecord) => {
    const token = ++runToken;
    divergence = new DivergenceWatch();
    const current = () => token === runToken;
    // a continued run goes on in its own record, with its own config, curves and adapters
    const config = cont ? structuredClone(cont.config) : runConfigOf(useApp.getState().state);
    const legStart = recorder.beginLeg(cont);
    setState({
      state: 'running', starting: true, pauseRequested: false, progress: null, message: null,
      history: cont ? curvesUpTo(cont.curves, cont.adapters.training!.step) : emptyHistory(),
      version: getState().version + 1, config, inspections: cont ? cont.inspections.slice() : [], inspectError: null, evalRows: null, savedNote: null,
      recordId: cont ? cont.id : newId('run'), startedAt: cont ? cont.createdAt : legStart, priorSeconds: cont?.trainSeconds ?? 0, initial: cont ? cont.adapters.initial : [],
      loadedFrom: load ? { name: load.name, ids: load.ids } : (cont?.loadedFrom ?? null), savedAdapters: cont ? cont.adapters.saved.slice() : [], viewing: null,
    });
    const engine = getEngine();
    const done = engine.startRun(config, proxy((p: RunProgress) => current() && onProgress(p)), { paused: true });
    await waitFor(() => getState().progress !== null || getState().state === 'error', done);
    if (!current() || getState().state === 'error') {
      if (current()) void persist();
      return;
    }
    const trains = isTrainedMethod(config.method);
    if (trains) {
      try {
        if (cont) await engine.continueRun(cont.adapters.final, cont.adapters.training!, cont.adapters.fuser ?? null);
        else {
          if (load) await engine.loadRunAdapters(load.adapters);
          setState({ initial: await engine.runAdapters() });
        }
      } catch (e) {
        setState({ state: 'error', starting: false, message: errorText(e) });
        await engine.resetRun().catch(() => undefined);
        void persist();
        return;
      }
    }
    recorder.startAutosave();
    await persist();
    await getState().inspect('before');
    if (!current()) return;
    setState({ starting: false });
    if (getState().state === 'error') return;
    if (mode !== 'train' || getState().pauseRequested) {
      setState({ state: 'paused' });
      if (mode === 'step' && trains) {
        await engine.stepRun();
        if (current()) void getState().inspect('after', true);
      }
      if (mode === 'hold') setState({ savedNote: `Loaded '${load?.name}': evaluate it, look at its messages, or press ▶ to train it further (a new run of ${getState().config?.steps ?? 'its'} steps from these weights: AdamW's moments and the learning-rate warm-up start again).` });
    } else await engine.resumeRun();
    await done;
    if (!current()) return;
    if (getState().state === 'running') setState({ state: 'done' });
    recorder.stopAutosave();
    // the final look, from the final weights: waits for a refresh in flight (taken a step or more earlier) instead of being skipped
    if (getState().state !== 'error') await getState().inspect('after', true);
    await persist(true);
  };

  return {
    state: 'idle',
    starting: false,
    pauseRequested: false,
    progress: null,
    message: null,
    version: 0,
    history: emptyHistory(),
    config: null,
    inspections: [],
    inspectError: null,
    inspecting: false,
    evalRows: null,
    evaluating: false,
    saving: false,
    savedNote: null,
    recordId: null,
    startedAt: null,
    priorSeconds: 0,
    initial: [],
    loadedFrom: null,
    savedAdapters: [],
    viewing: null,

    async play() {
      const s = getState().state;
      try {
        if (s === 'paused' && getState().starting) setState({ pauseRequested: false, state: 'running' });
        else if (s === 'paused') {
          setState({ state: 'running', savedNote: null });
          await getEngine().resumeRun();
        } else if (s !== 'running') await begin('train');
      } catch (e) {
        setState({ state: 'error', message: errorText(e) });
      }
    },
    async pause() {
      if (getState().state !== 'running') return;
      if (getState().starting) {
        setState({ pauseRequested: true, state: 'paused' });
        return;
      }
      try {
        await getEngine().pauseRun();
        setState({ state: 'paused' });
        void persist(true);
        // the record's look at the weights it pauses with (the live refresh stops while paused); inspect saves the record again
        void getState().inspect('after', true);
      } catch (e) {
        setState({ message: errorText(e) });
      }
    },
    async step() {
      const s = getState().state;
      try {
        if (s === 'idle' || s === 'done' || s === 'stopped' || s === 'error') {
          await begin('step');
          return;
        }
        if (getState().starting) {
          setState({ pauseRequested: true, state: 'paused' });
          return;
        }
        if (s === 'running') await getEngine().pauseRun();
        setState({ state: 'paused' });
        await getEngine().stepRun();
        void getState().inspect('after', true);
      } catch (e) {
        setState({ message: errorText(e) });
      }
    },
    async reset() {
      const s = getState();
      // a run ended by a reset keeps its record, with what it had measured
      if ((s.state === 'running' || s.state === 'paused') && s.recordId) {
        try {
          await getEngine().pauseRun();
        } catch {
          /* it may be ending anyway */
        }
        // the stopped run's record looks at the weights it keeps
        if (!s.starting) await getState().inspect('after', true);
        await persist(true);
        const rec = recorder.recordOf();
        if (rec) await getEngine().saveRun({ ...rec, status: 'stopped' }).then(() => useLibrary.getState().refreshRuns(), () => undefined);
        recorder.clearLive();
      }
      runToken++;
      recorder.stopAutosave();
      try {
        await getEngine().resetRun();
      } catch (e) {
        setState({ message: errorText(e) });
      }
      recorder.forget();
      setState({
        state: 'idle', starting: false, pauseRequested: false, progress: null, history: emptyHistory(), version: getState().version + 1, config: null,
        inspections: [], inspectError: null, evalRows: null, message: null, savedNote: null, recordId: null, startedAt: null, priorSeconds: 0, initial: [], loadedFrom: null,
        savedAdapters: [],
      });
    },
    configChanged() {
      const s = getState().state;
      if (s === 'done' || s === 'stopped' || s === 'error') void getState().reset();
    },
    async inspect(which = 'after', wait = false) {
      if (getState().state === 'idle') return;
      // 'after' refreshes are skipped while one is in flight (the next tick retries); 'before', and a new example's look, wait their turn.
      if (inflight && which === 'after' && !wait) return;
      while (inflight) await inflight;
      const app = useApp.getState().state;
      const { split, example } = app;
      setState({ inspecting: true });
      const job = (async () => {
        try {
          const s = getState();
          const step = s.progress?.step ?? 0;
          const engine = getEngine();
          // 'before' of an example seen after training started: the initial adapters, put in for the look
          // (c2c: the initial fuser, which the worker puts in itself; it has no adapters)
          const r = which === 'before' && step > 0 && (s.initial.length || s.config?.method === 'c2c') ? await engine.inspectWith(s.initial, split, example) : await engine.inspect(split, example);
          // 'after': the step of the weights the worker looked with (training may have gone on since it was asked for)
          const item: StoredInspection = { which, step: which === 'before' ? 0 : r.step ?? step, result: r };
          const key = exampleKey(split, example);
          const rest = getState().inspections.filter((x) => !(x.which === which && exampleKey(x.result.split, x.result.index) === key));
          setState({ inspections: [...rest, item].slice(-40), inspectError: null });
          // a look taken after the run ended goes into its record too (a live run is saved every few seconds anyway)
          const st = getState().state;
          if ((st === 'done' || st === 'stopped' || st === 'paused') && !getState().starting) void persist();
        } catch (e) {
          setState({ inspectError: errorText(e) });
        }
      })();
      inflight = job;
      await job;
      inflight = null;
      setState({ inspecting: false });
    },
    async evaluate() {
      if (getState().evaluating) return;
      setState({ evaluating: true });
      try {
        setState({ evalRows: withIntervals(await getEngine().evaluate(['train', 'heldout', 'ood'])) });
        void persist();
      } catch (e) {
        setState({ message: errorText(e) });
      } finally {
        setState({ evaluating: false });
      }
    },
    async save(name) {
      setState({ saving: true, savedNote: null });
      try {
        const saved = await getEngine().saveAdapters(name);
        setState({
          savedNote: `Saved ${saved.length === 1 ? `adapter '${saved[0].name}'` : `${saved.length} adapters`} to the library.`,
          savedAdapters: [...getState().savedAdapters, ...saved.map((a) => ({ id: a.id, name: a.name }))],
        });
        await useLibrary.getState().refresh();
        void persist(true);
      } catch (e) {
        setState({ message: errorText(e) });
      } finally {
        setState({ saving: false });
      }
    },
    async openAdapters(ids, name) {
      const st = getState().state;
      if (st === 'running' || st === 'paused') {
        setState({ message: 'A run is active: reset it before opening an adapter set.' });
        return;
      }
      try {
        const adapters = await getEngine().adapterSet(ids);
        if (st !== 'idle') await getState().reset();
        await begin('hold', { adapters, name, ids });
      } catch (e) {
        setState({ message: errorText(e) });
      }
    },
    async continueRun(id) {
      const st = getState().state;
      if (st === 'running' || st === 'paused') {
        setState({ message: 'A run is active: reset it before continuing another.' });
        return;
      }
      try {
        const rec = await getEngine().runRecord(id);
        const why = continueProblem(rec);
        if (why) throw new Error(why);
        if (!useLibrary.getState().models.some((m) => m.id === rec.baseModelId)) {
          throw new Error(`its base model ${rec.baseName ? `'${rec.baseName}'` : JSON.stringify(rec.baseModelId)} is no longer in the library: import it again to continue the run`);
        }
        if (getState().state !== 'idle') await getState().reset();
        const app = useApp.getState();
        app.replace({ ...stateOfRunConfig(app.state, rec.config), model: rec.baseModelId });
        await begin('train', undefined, rec);
      } catch (e) {
        setState({ message: `This run cannot be continued: ${errorText(e)}` });
      }
    },
    persist,
    async view(id) {
      try {
        const rec = await getEngine().runRecord(id);
        if (rec.kind === 'compare') {
          useCompare.getState().show(rec);
          return;
        }
        setState({ viewing: rec });
        if (typeof window !== 'undefined') window.scrollTo({ top: 0 });
      } catch (e) {
        useLibrary.setState({ error: errorText(e) });
      }
    },
    closeView() {
      setState({ viewing: null });
    },
    dismiss() {
      setState({ message: null, savedNote: null });
    },
  };
});

/** Resolves when `cond` holds (checked every 50 ms) or `done` settles. */
function waitFor(cond: () => boolean, done: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    void done.finally(() => {
      settled = true;
    });
    const tick = () => (cond() || settled ? resolve() : setTimeout(tick, 50));
    tick();
  });
}

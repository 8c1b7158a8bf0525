// UI state (zustand), one store per concern:
//   useEnv      what the worker found (adapter, self-test) and the storage check
//   useApp      the shareable setup (src/ui/state.ts), mirrored to the URL hash
//   useRun      the live run: progress, the full loss/accuracy history, inspections, saving
//   useLibrary  models and adapters in IndexedDB, import/export, pretraining, storage estimate
//   useCompare  several methods and seeds on the same task
// Everything GPU happens in the worker; these stores hold plain data only.
import { proxy, transfer } from 'comlink';
import { create } from 'zustand';
import type {
  AdapterData, AdapterEntry, EnvReport, EvalPoint, EvalRow, EvalRowCi, ExperimentReport, MethodName, ModelEntry, PretrainRequest, RunConfig,
  RunCurves, RunEntry, RunProgress, RunRecord, RunState, RunTrainingState, StoredInspection,
} from '../worker/api';
import { wilson95 } from '../mas/base-eval';
import { newId } from '../storage/library';
import { readExperimentReport } from '../storage/report';
import { adapterInfo } from '../storage/records';
import { TRAINED_METHODS } from '../worker/api';
import { checkStorage, requestPersistence, type StorageHealth } from '../storage/health';
import { download, errorText, getEngine } from './engine';
import { DivergenceWatch } from '../model/divergence';
import { DEFAULT_STATE, RUN_PROPS, parseState, runConfigOf, serializeState, stateOfRunConfig, type AppState } from './state';

// ---------------------------------------------------------------- environment

interface EnvState {
  env: EnvReport | null;
  storage: StorageHealth | null;
  loadEnv(): Promise<void>;
  loadStorage(): Promise<void>;
  persist(): Promise<void>;
}

let envLoading: Promise<void> | null = null;
let storageLoading: Promise<void> | null = null;

export const useEnv = create<EnvState>((setState) => ({
  env: null,
  storage: null,
  loadEnv() {
    envLoading ??= (async () => {
      try {
        setState({ env: await getEngine().init() });
      } catch (e) {
        setState({ env: { ok: false, kind: 'error', message: `the engine worker failed to start: ${(e as Error).message}` } });
      }
    })();
    return envLoading;
  },
  loadStorage() {
    // once per page: two checks at once (the panel mounted twice) raced on one probe key and reported a false failure
    storageLoading ??= (async () => {
      setState({ storage: await checkStorage() });
    })();
    return storageLoading;
  },
  async persist() {
    await requestPersistence();
    setState({ storage: await checkStorage() });
    void useLibrary.getState().refreshEstimate();
  },
}));

// ---------------------------------------------------------------- the shareable setup

interface AppStore {
  state: AppState;
  /** Values of the link that could not be used. */
  linkProblems: string[];
  set(patch: Partial<AppState>): void;
  /** Replaces the whole setup (a link opened in this tab, an adapter's run configuration). */
  replace(state: AppState): void;
  dismissLinkProblems(): void;
}

const initial = parseState(typeof location !== 'undefined' ? location.hash : '');
let lastHash = '';

function writeHash(s: AppState): void {
  if (typeof history === 'undefined') return;
  const hash = serializeState(s);
  if (hash === lastHash) return;
  lastHash = hash;
  history.replaceState(null, '', `#${hash}`);
}

export const useApp = create<AppStore>((setState, getState) => ({
  state: initial.state,
  linkProblems: initial.problems,
  set(patch) {
    const prev = getState().state;
    const next = { ...prev, ...patch };
    setState({ state: next });
    writeHash(next);
    if (RUN_PROPS.some((k) => k in patch && patch[k] !== prev[k])) useRun.getState().configChanged();
  },
  replace(state) {
    setState({ state });
    writeHash(state);
    useRun.getState().configChanged();
  },
  dismissLinkProblems() {
    setState({ linkProblems: [] });
  },
}));

if (typeof window !== 'undefined') {
  writeHash(initial.state);
  // A link pasted into this tab's address bar: restore it.
  window.addEventListener('hashchange', () => {
    if (location.hash.replace(/^#/, '') === lastHash) return;
    const parsed = parseState(location.hash);
    lastHash = '';
    // A new link is a new setup: an active run of the old one ends.
    if (useRun.getState().state !== 'idle') void useRun.getState().reset();
    useApp.setState({ linkProblems: parsed.problems });
    useApp.getState().replace(parsed.state);
  });
}

// ---------------------------------------------------------------- the run

export type { EvalPoint };

/** The full history of a run (never thinned; charts thin only what they draw). */
export type History = RunCurves;

/** Seconds between saves of a live run's record. */
export const AUTOSAVE_SECONDS = 5;
/** Every this many autosaves, the record takes the run's adapters and training state too (30 s). */
export const CHECKPOINT_TICKS = 6;
/** A record still marked running but not saved for this long belongs to no live tab: it was interrupted. */
const STALE_SECONDS = 30;
const LIVE_KEY = 'latent-playground:live-run';

interface RunStore {
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
let autosave: ReturnType<typeof setInterval> | null = null;

const emptyHistory = (): History => ({ steps: [], loss: [], evals: [] });

function exampleKey(split: string, index: number): string {
  return `${split}:${index}`;
}

/** A record's curves up to a step (a continued run goes on from its last checkpoint: what was measured after it is measured again). */
export function curvesUpTo(c: RunCurves, step: number): History {
  const n = c.steps.filter((s) => s <= step).length;
  return { steps: c.steps.slice(0, n), loss: c.loss.slice(0, n), evals: c.evals.filter((e) => e.step <= step) };
}

/** Why a stored run cannot be continued, or null when it can. */
export function continueProblem(rec: RunRecord): string | null {
  if (rec.kind !== 'run') return 'a comparison is not a run';
  if (!isTrainedMethod(rec.config.method)) return `${rec.config.method} trains nothing`;
  if (!rec.adapters.training || !rec.adapters.final.length) return 'its record holds no training state (it was saved before a checkpoint was taken, or by an older version)';
  if (rec.adapters.training.step >= rec.config.steps) return `it has taken all its ${rec.config.steps} steps`;
  return null;
}

/** Wilson 95% interval of each row's accuracy. */
export function withIntervals(rows: EvalRow[]): EvalRowCi[] {
  return rows.map((r) => ({ ...r, ci95: r.episodes > 0 ? wilson95(Math.round(r.accuracy * r.episodes), r.episodes) : null }));
}

/** The record name of a run. */
export function runName(c: RunConfig, loadedFrom?: { name: string } | null): string {
  return `${c.task} d${c.difficulty} · ${c.method} · seed ${c.seed}${loadedFrom ? ` · from '${loadedFrom.name}'` : ''}`;
}

function sessionGet(): string | null {
  try {
    return sessionStorage.getItem(LIVE_KEY);
  } catch {
    return null;
  }
}
function sessionSet(id: string | null): void {
  try {
    if (id) sessionStorage.setItem(LIVE_KEY, id);
    else sessionStorage.removeItem(LIVE_KEY);
  } catch {
    /* no session storage: the staleness rule alone finds interrupted runs */
  }
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
  let finalAdapters: { list: AdapterData[]; step: number; training: RunTrainingState | null } | null = null;
  /** A continued run's time before this leg (0 for a new run), and when this leg began. */
  let priorWall = 0;
  let priorTrain = 0;
  let legStart = 0;
  let saving: Promise<void> | null = null;

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

  const recordOf = (): RunRecord | null => {
    const s = getState();
    if (!s.recordId || !s.config || s.startedAt === null) return null;
    const status: RunRecord['status'] = s.state === 'idle' ? 'stopped' : s.starting ? 'running' : s.state;
    const models = useLibrary.getState().models;
    const env = useEnv.getState().env;
    const fin = finalAdapters;
    return {
      id: s.recordId, kind: 'run', name: runName(s.config, s.loadedFrom), createdAt: s.startedAt, updatedAt: Date.now(), status,
      config: structuredClone(s.config), baseModelId: s.config.modelId, baseName: models.find((m) => m.id === s.config!.modelId)?.name,
      curves: { steps: s.history.steps.slice(), loss: s.history.loss.slice(), evals: s.history.evals.slice() },
      evalRows: s.evalRows, inspections: s.inspections.slice(),
      adapters: {
        initial: s.initial, final: fin?.list ?? [], finalStep: fin?.step ?? null, training: fin?.training ?? null, saved: s.savedAdapters.slice(),
        info: adapterInfo(fin?.list.length ? fin.list : s.initial),
      },
      ...(s.loadedFrom ? { loadedFrom: s.loadedFrom } : {}),
      wallSeconds: priorWall + (Date.now() - legStart) / 1000, trainSeconds: priorTrain + (s.progress?.elapsedSeconds ?? 0),
      stepsDone: s.history.steps[s.history.steps.length - 1] ?? 0,
      ...(s.state === 'error' && s.message ? { message: s.message } : {}),
      ...(env?.ok ? { device: [env.report.vendor, env.report.architecture, env.report.description].filter(Boolean).join(' ') } : {}),
    };
  };

  const persist = async (withAdapters = false): Promise<void> => {
    while (saving) await saving;
    const job = (async () => {
      const s = getState();
      if (withAdapters && s.config && isTrainedMethod(s.config.method) && s.state !== 'error' && s.state !== 'idle') {
        try {
          // adapters and AdamW's state of one step, read together: a stopped or interrupted run continues from them
          const cp = await getEngine().runCheckpoint();
          finalAdapters = { list: cp.adapters, step: cp.step, training: cp.training };
        } catch {
          /* the run is gone (a reset, a lost device): the last adapters read stay */
        }
      }
      const rec = recordOf();
      if (!rec) return;
      try {
        await getEngine().saveRun(rec);
        if (rec.status === 'running' || rec.status === 'paused') sessionSet(rec.id);
        else sessionSet(null);
        void useLibrary.getState().refreshRuns();
      } catch (e) {
        setState({ message: `The run's record could not be saved: ${errorText(e)}` });
      }
    })();
    saving = job;
    await job;
    saving = null;
  };

  const stopAutosave = () => {
    if (autosave) clearInterval(autosave);
    autosave = null;
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
    finalAdapters = cont && cont.adapters.training ? { list: cont.adapters.final, step: cont.adapters.training.step, training: cont.adapters.training } : null;
    priorWall = cont?.wallSeconds ?? 0;
    priorTrain = cont?.trainSeconds ?? 0;
    legStart = Date.now();
    setState({
      state: 'running', starting: true, pauseRequested: false, progress: null, message: null,
      history: cont ? curvesUpTo(cont.curves, cont.adapters.training!.step) : emptyHistory(),
      version: getState().version + 1, config, inspections: cont ? cont.inspections.slice() : [], inspectError: null, evalRows: null, savedNote: null,
      recordId: cont ? cont.id : newId('run'), startedAt: cont ? cont.createdAt : legStart, initial: cont ? cont.adapters.initial : [],
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
        if (cont) await engine.continueRun(cont.adapters.final, cont.adapters.training!);
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
    stopAutosave();
    let ticks = 0;
    autosave = setInterval(() => {
      const st = getState().state;
      // every CHECKPOINT_TICKS-th save reads the adapters and AdamW's state too: a closed tab's run continues from there
      if (st === 'running' || st === 'paused') void persist(++ticks % CHECKPOINT_TICKS === 0);
    }, AUTOSAVE_SECONDS * 1000);
    await persist();
    await getState().inspect('before');
    if (!current()) return;
    setState({ starting: false });
    if (getState().state === 'error') return;
    if (mode !== 'train' || getState().pauseRequested) {
      setState({ state: 'paused' });
      if (mode === 'step' && trains) {
        await engine.stepRun();
        if (current()) void getState().inspect('after');
      }
      if (mode === 'hold') setState({ savedNote: `Loaded '${load?.name}': evaluate it, look at its messages, or press ▶ to train it further (a new run of ${getState().config?.steps ?? 'its'} steps from these weights: AdamW's moments and the learning-rate warm-up start again).` });
    } else await engine.resumeRun();
    await done;
    if (!current()) return;
    if (getState().state === 'running') setState({ state: 'done' });
    stopAutosave();
    if (getState().state !== 'error') await getState().inspect('after');
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
        void getState().inspect('after');
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
        await persist(true);
        const rec = recordOf();
        if (rec) await getEngine().saveRun({ ...rec, status: 'stopped' }).then(() => useLibrary.getState().refreshRuns(), () => undefined);
        sessionSet(null);
      }
      runToken++;
      stopAutosave();
      try {
        await getEngine().resetRun();
      } catch (e) {
        setState({ message: errorText(e) });
      }
      finalAdapters = null;
      setState({
        state: 'idle', starting: false, pauseRequested: false, progress: null, history: emptyHistory(), version: getState().version + 1, config: null,
        inspections: [], inspectError: null, evalRows: null, message: null, savedNote: null, recordId: null, startedAt: null, initial: [], loadedFrom: null,
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
          const r = which === 'before' && step > 0 && s.initial.length ? await engine.inspectWith(s.initial, split, example) : await engine.inspect(split, example);
          const item: StoredInspection = { which, step: which === 'before' ? 0 : step, result: r };
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
          throw new Error(`its base model ${JSON.stringify(rec.baseModelId)} is no longer in the library: import it again to continue the run`);
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

/** What the run panels show: the live run, or a stored one opened read-only. */
export interface ShownRun {
  readOnly: boolean;
  record: RunRecord | null;
  state: RunState | RunRecord['status'];
  config: RunConfig | null;
  history: History;
  evalRows: EvalRowCi[] | null;
  inspections: StoredInspection[];
  progress: RunProgress | null;
  version: number;
  initial: AdapterData[];
}

export function useShownRun(): ShownRun {
  const run = useRun();
  const v = run.viewing;
  if (v) {
    return {
      readOnly: true, record: v, state: v.status, config: v.config, history: v.curves, evalRows: v.evalRows, inspections: v.inspections,
      progress: null, version: v.updatedAt, initial: v.adapters.initial,
    };
  }
  return {
    readOnly: false, record: null, state: run.state, config: run.config, history: run.history, evalRows: run.evalRows, inspections: run.inspections,
    progress: run.progress, version: run.version, initial: run.initial,
  };
}

if (typeof window !== 'undefined') {
  // Closing the tab mid-run asks first; the record is saved either way (the next visit offers to reopen it).
  window.addEventListener('beforeunload', (e) => {
    const run = useRun.getState();
    const busy = run.state === 'running' || run.state === 'paused' || useCompare.getState().running || useLibrary.getState().pretrain.running;
    if (!busy) return;
    void run.persist();
    e.preventDefault();
    e.returnValue = '';
  });
}

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

export const isTrainedMethod = (m: MethodName) => TRAINED_METHODS.includes(m);

/** Marks the records a closed or reloaded tab left 'running' as interrupted; returns the newest of them. */
async function findInterrupted(runs: RunEntry[]): Promise<RunEntry | null> {
  const mine = sessionGet();
  const now = Date.now();
  const live = useRun.getState().recordId;
  let newest: RunEntry | null = null;
  for (const r of runs) {
    if ((r.status !== 'running' && r.status !== 'paused') || r.id === live) continue;
    if (r.id !== mine && now - r.updatedAt < STALE_SECONDS * 1000) continue;
    try {
      const rec = await getEngine().runRecord(r.id);
      const entry = await getEngine().saveRun({ ...rec, status: 'interrupted', message: `interrupted at step ${rec.stepsDone} (the tab was closed or reloaded)` });
      if (!newest || entry.updatedAt > newest.updatedAt) newest = entry;
    } catch {
      /* left as it is; the list still shows it */
    }
  }
  if (mine && !runs.some((r) => r.id === mine && r.id === live)) sessionSet(null);
  return newest;
}

// ---------------------------------------------------------------- library

const fmtMB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;

/**
 * The files of an import worth reading. Picked or dropped files: all of them (the worker says what
 * they are). From a folder: only its own zips, JSON and safetensors files (not those of subfolders
 * such as onnx/); a hub folder's pytorch_model.bin, ONNX or GGUF files are neither read nor counted
 * against the quota.
 */
export function importable(files: readonly File[]): File[] {
  // a picked folder that is a run bundle (run.json at its top) goes whole: its adapters lie deeper
  if (files.some((f) => f.webkitRelativePath && f.webkitRelativePath.split('/').length === 2 && f.name === 'run.json')) return files.slice();
  return files.filter((f) => {
    if (!f.webkitRelativePath) return true;
    const rel = f.webkitRelativePath.split('/');
    return rel.length <= 2 && /\.(zip|json|safetensors)$/i.test(f.name);
  });
}

/** A file's bytes, reporting how many have been read as they arrive. */
async function readWithProgress(f: File, onBytes: (n: number) => void): Promise<Uint8Array> {
  if (typeof f.stream !== 'function') return new Uint8Array(await f.arrayBuffer());
  const out = new Uint8Array(f.size);
  const reader = f.stream().getReader();
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out.set(value, at);
    at += value.length;
    onBytes(at);
  }
  return at === out.length ? out : out.subarray(0, at);
}

export interface PretrainStatus {
  running: boolean;
  progress: RunProgress | null;
  losses: number[];
  error: string | null;
  done: string | null;
}

interface LibraryStore {
  models: ModelEntry[];
  adapters: AdapterEntry[];
  /** Stored runs (training, evaluation, comparisons), newest first. */
  runs: RunEntry[];
  /** A run a closed or reloaded tab left unfinished (offered for reopening once). */
  interrupted: RunEntry | null;
  dismissInterrupted(): void;
  refreshRuns(): Promise<void>;
  removeRun(id: string): Promise<void>;
  /** Downloads a stored run as one zip: the run bundle plus CSV, SVG and PNG of its curves, tables and heatmaps. */
  exportRun(id: string): Promise<void>;
  loaded: boolean;
  notes: string[];
  usage: number | null;
  quota: number | null;
  persisted: boolean | null;
  /** An import under way: what it is doing and how far (0..1). */
  importProgress: { stage: string; fraction: number } | null;
  /** The last import/export/rename/delete failure, in words. */
  error: string | null;
  /** The stored index cannot be read (LibraryIndexError): the panel offers rebuildIndex. */
  indexBroken: boolean;
  rebuildIndex(): Promise<void>;
  notice: string | null;
  busy: string | null;
  pretrain: PretrainStatus;
  refresh(): Promise<void>;
  refreshEstimate(): Promise<void>;
  rename(kind: 'model' | 'adapter', id: string, name: string): Promise<void>;
  remove(kind: 'model' | 'adapter', id: string): Promise<void>;
  exportEntry(kind: 'model' | 'adapter', id: string): Promise<void>;
  importFiles(files: File[]): Promise<void>;
  startPretrain(req: PretrainRequest): Promise<void>;
  cancelPretrain(): Promise<void>;
  dismiss(): void;
}

export const useLibrary = create<LibraryStore>((setState, getState) => {
  const guard = async (label: string, fn: () => Promise<void>) => {
    setState({ busy: label, error: null, notice: null });
    try {
      await fn();
    } catch (e) {
      setState({ error: errorText(e) });
    } finally {
      setState({ busy: null });
      await getState().refresh();
    }
  };
  let checkedInterrupted = false;
  return {
    models: [],
    adapters: [],
    runs: [],
    interrupted: null,
    dismissInterrupted() {
      setState({ interrupted: null });
    },
    async refreshRuns() {
      try {
        const runs = await getEngine().listRuns();
        setState({ runs });
        if (!checkedInterrupted) {
          checkedInterrupted = true;
          const found = await findInterrupted(runs);
          if (found) setState({ interrupted: found, runs: await getEngine().listRuns() });
        }
      } catch (e) {
        setState({ error: `The stored runs could not be read: ${errorText(e)}` });
      }
    },
    removeRun(id) {
      return guard('delete', async () => {
        await getEngine().deleteRun(id);
        if (useRun.getState().viewing?.id === id) useRun.getState().closeView();
        if (getState().interrupted?.id === id) setState({ interrupted: null });
      });
    },
    exportRun(id) {
      return guard('export', async () => {
        const { exportRunZip } = await import('./export');
        const file = await exportRunZip(id);
        download(file);
        setState({ notice: `Exported ${file.name}.` });
      });
    },
    loaded: false,
    notes: [],
    usage: null,
    quota: null,
    persisted: null,
    importProgress: null,
    error: null,
    indexBroken: false,
    notice: null,
    busy: null,
    pretrain: { running: false, progress: null, losses: [], error: null, done: null },
    async refresh() {
      const engine = getEngine();
      try {
        const [models, adapters, notes] = await Promise.all([engine.listModels(), engine.listAdapters(), engine.libraryNotes()]);
        setState({ models, adapters, notes, loaded: true, indexBroken: false });
        await getState().refreshRuns();
      } catch (e) {
        const broken = (e as Error)?.name === 'LibraryIndexError' || /library index cannot be read/.test(errorText(e));
        setState({ error: `The library could not be read: ${errorText(e)}`, loaded: true, indexBroken: broken });
      }
      await getState().refreshEstimate();
    },
    async refreshEstimate() {
      try {
        const est = await getEngine().storageEstimate();
        setState({ usage: est.usage, quota: est.quota, persisted: est.persisted });
      } catch {
        /* the estimate is informative only */
      }
    },
    rebuildIndex() {
      return guard('rebuild', async () => {
        const r = await getEngine().rebuildLibraryIndex();
        setState({
          indexBroken: false,
          notice: `Rebuilt the library index: ${r.models} base model(s) and ${r.adapters} adapter(s) found` +
            `${r.skipped.length ? `; ${r.skipped.length} unreadable record(s) left as they are` : ''}${r.backup ? '; the old index is kept' : ''}.`,
        });
      });
    },
    rename(kind, id, name) {
      return guard('rename', async () => {
        if (kind === 'model') await getEngine().renameModel(id, name);
        else await getEngine().renameAdapter(id, name);
      });
    },
    remove(kind, id) {
      return guard('delete', async () => {
        if (kind === 'model') await getEngine().deleteModel(id);
        else await getEngine().deleteAdapter(id);
      });
    },
    exportEntry(kind, id) {
      return guard('export', async () => {
        const file = kind === 'model' ? await getEngine().exportModel(id) : await getEngine().exportAdapter(id);
        download(file);
        setState({ notice: `Exported ${file.name}.` });
      });
    },
    importFiles(files) {
      return guard('import', async () => {
        const picked = importable(files);
        if (!picked.length) {
          throw new Error(
            `none of these files can be imported (${files.slice(0, 5).map((f) => f.name).join(', ')}${files.length > 5 ? ', …' : ''}): ` +
              'give config.json with model.safetensors (or its shards and model.safetensors.index.json) and tokenizer.json, a PEFT adapter, a zip of them, or an exported run (zip or folder)',
          );
        }
        const total = picked.reduce((n, f) => n + f.size, 0);
        // the quota first: the files themselves must fit (the worker checks the exact stored size again)
        await getState().refreshEstimate();
        const { usage, quota } = getState();
        if (usage !== null && quota !== null && total > quota - usage) {
          throw new Error(`not enough storage: these files are ${fmtMB(total)} but this site may store only ${fmtMB(Math.max(0, quota - usage))} more (${fmtMB(usage)} used of ${fmtMB(quota)}); delete entries from the library or free disk space; nothing was written`);
        }
        try {
          let done = 0;
          const blobs: { name: string; bytes: Uint8Array }[] = [];
          for (const f of picked) {
            blobs.push({ name: f.webkitRelativePath || f.name, bytes: await readWithProgress(f, (n) => setState({ importProgress: { stage: `reading ${f.name}`, fraction: (0.5 * (done + n)) / Math.max(1, total) } })) });
            done += f.size;
          }
          const model = useApp.getState().state.model;
          const onProgress = (stage: string, fraction: number) => setState({ importProgress: { stage, fraction: 0.5 + 0.5 * fraction } });
          const r = await getEngine().importFiles(transfer(blobs, blobs.map((b) => b.bytes.buffer)), model, proxy(onProgress));
          // the list first, so that the notice never names an entry the list does not show yet
          await getState().refresh();
          setState({ notice: r.kind === 'run' ? `Imported run '${r.name}': it is in the Runs list.` : `Imported ${r.kind === 'model' ? 'base model' : 'adapter'} '${r.name}'.` });
        } finally {
          setState({ importProgress: null });
        }
      });
    },
    async startPretrain(req) {
      if (getState().pretrain.running) return;
      const losses: number[] = [];
      setState({ pretrain: { running: true, progress: null, losses, error: null, done: null } });
      const watch = new DivergenceWatch();
      const onProgress = (p: RunProgress) => {
        if (Number.isFinite(p.loss) && p.state === 'running') losses.push(p.loss);
        const diverging = p.state === 'running' ? watch.push(p.step, p.loss) : null;
        setState({ pretrain: { ...getState().pretrain, progress: p, losses, ...(diverging ? { error: `Warning: ${diverging}.` } : {}) } });
      };
      try {
        const entry = await getEngine().pretrain(req, proxy(onProgress));
        setState({ pretrain: { ...getState().pretrain, running: false, done: `Stored base model '${entry.name}'.` } });
      } catch (e) {
        setState({ pretrain: { ...getState().pretrain, running: false, error: errorText(e) } });
      }
      await getState().refresh();
    },
    async cancelPretrain() {
      await getEngine().cancelPretrain();
    },
    dismiss() {
      setState({ error: null, notice: null });
    },
  };
});

// ---------------------------------------------------------------- compare

interface CompareStore {
  running: boolean;
  message: string;
  fraction: number;
  report: ExperimentReport | null;
  error: string | null;
  /** The stored comparison shown (its record), when one was opened from the Runs list or a report file. */
  shown: { id: string | null; name: string } | null;
  run(): Promise<void>;
  /** Shows a stored comparison (read-only). */
  show(rec: RunRecord): void;
  /** Shows a report read from a JSON file (the page's export or `npm run experiment -- --json`). */
  openReport(text: string, name: string): void;
  clearShown(): void;
}

export const useCompare = create<CompareStore>((setState, getState) => ({
  running: false,
  message: '',
  fraction: 0,
  report: null,
  error: null,
  shown: null,
  async run() {
    if (getState().running) return;
    const s = useApp.getState().state;
    const { method: _m, seed: _s, ...base } = runConfigOf(s);
    void _m;
    void _s;
    const request = { base, methods: s.compareMethods, seeds: s.compareSeeds };
    const id = newId('run');
    const startedAt = Date.now();
    const env = useEnv.getState().env;
    const device = env?.ok ? [env.report.vendor, env.report.architecture, env.report.description].filter(Boolean).join(' ') : undefined;
    const record = (status: RunRecord['status'], report: ExperimentReport | null, message?: string): RunRecord => ({
      id, kind: 'compare', name: `compare ${base.task} d${base.difficulty} · ${request.methods.join(', ')} · seeds ${request.seeds.join(',')}`,
      createdAt: startedAt, updatedAt: Date.now(), status, config: { ...base, method: request.methods[0], seed: request.seeds[0] },
      baseModelId: base.modelId, baseName: useLibrary.getState().models.find((m) => m.id === base.modelId)?.name,
      curves: { steps: [], loss: [], evals: [] }, evalRows: null, inspections: [],
      adapters: { initial: [], final: [], finalStep: null, saved: [], info: null },
      wallSeconds: (Date.now() - startedAt) / 1000, trainSeconds: 0, stepsDone: 0, ...(message ? { message } : {}), ...(device ? { device } : {}),
      compare: { request, report },
    });
    const store = (r: RunRecord) => getEngine().saveRun(r).then(() => useLibrary.getState().refreshRuns(), () => undefined);
    setState({ running: true, message: 'starting…', fraction: 0, error: null, shown: null });
    void store(record('running', null));
    const tick = setInterval(() => void store(record('running', null)), AUTOSAVE_SECONDS * 2000);
    try {
      const raw = await getEngine().compare(request, proxy((message: string, fraction: number) => setState({ message, fraction })));
      // the args `experiment --json` writes beside the request's (one reader for both)
      const report: ExperimentReport = { ...raw, args: { ...raw.args, model: base.modelId, device, seconds: (Date.now() - startedAt) / 1000, source: 'page' } };
      setState({ report, fraction: 1, message: 'done' });
      clearInterval(tick);
      await store(record('done', report));
    } catch (e) {
      clearInterval(tick);
      setState({ error: errorText(e) });
      await store(record('error', null, errorText(e)));
    } finally {
      setState({ running: false });
    }
  },
  show(rec) {
    if (!rec.compare?.report) {
      setState({ error: `The comparison '${rec.name}' has no results (it ${rec.status === 'error' ? `failed: ${rec.message ?? 'unknown error'}` : 'did not finish'}).`, report: null, shown: null });
      return;
    }
    setState({ report: rec.compare.report, shown: { id: rec.id, name: rec.name }, error: null, fraction: 0 });
    document.getElementById('compare-title')?.scrollIntoView({ behavior: 'smooth' });
  },
  openReport(text, name) {
    try {
      const report = readExperimentReport(text);
      setState({ report, shown: { id: null, name }, error: null, fraction: 0 });
    } catch (e) {
      setState({ error: `${name}: ${errorText(e)}` });
    }
  },
  clearShown() {
    setState({ shown: null, report: null });
  },
}));

export { DEFAULT_STATE };

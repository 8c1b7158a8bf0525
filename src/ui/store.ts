// UI state (zustand), one store per concern:
//   useEnv      what the worker found (adapter, self-test) and the storage check
//   useApp      the shareable setup (src/ui/state.ts), mirrored to the URL hash
//   useRun      the live run: progress, the full loss/accuracy history, inspections, saving
//   useLibrary  models and adapters in IndexedDB, import/export, pretraining, storage estimate
//   useCompare  several methods and seeds on the same task
// Everything GPU happens in the worker; these stores hold plain data only.
import { proxy } from 'comlink';
import { create } from 'zustand';
import type {
  AdapterEntry, EnvReport, EvalRow, ExperimentReport, InspectResult, MethodName, ModelEntry, PretrainRequest, RunProgress,
  RunState,
} from '../worker/api';
import { TRAINED_METHODS } from '../worker/api';
import { checkStorage, requestPersistence, type StorageHealth } from '../storage/health';
import { download, errorText, getEngine } from './engine';
import { DivergenceWatch } from '../model/divergence';
import { DEFAULT_STATE, RUN_PROPS, parseState, runConfigOf, serializeState, type AppState } from './state';

// ---------------------------------------------------------------- environment

interface EnvState {
  env: EnvReport | null;
  storage: StorageHealth | null;
  loadEnv(): Promise<void>;
  loadStorage(): Promise<void>;
  persist(): Promise<void>;
}

export const useEnv = create<EnvState>((setState) => ({
  env: null,
  storage: null,
  async loadEnv() {
    try {
      setState({ env: await getEngine().init() });
    } catch (e) {
      setState({ env: { ok: false, kind: 'error', message: `the engine worker failed to start: ${(e as Error).message}` } });
    }
  },
  async loadStorage() {
    setState({ storage: await checkStorage() });
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

export interface EvalPoint {
  step: number;
  loss: number | null;
  accuracy: number | null;
}

/** The full history of a run (never thinned; charts thin only what they draw). */
export interface History {
  steps: number[];
  loss: number[];
  evals: EvalPoint[];
}

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
  config: ReturnType<typeof runConfigOf> | null;
  before: InspectResult | null;
  beforeKey: string | null;
  after: InspectResult | null;
  afterStep: number | null;
  inspectError: string | null;
  inspecting: boolean;
  evalRows: EvalRow[] | null;
  evaluating: boolean;
  saving: boolean;
  savedNote: string | null;
  /** Start from the seed, or resume a paused run. */
  play(): Promise<void>;
  pause(): Promise<void>;
  /** One training step (starts the run paused when there is none). */
  step(): Promise<void>;
  reset(): Promise<void>;
  /** The setup changed: a finished run's numbers no longer describe it. */
  configChanged(): void;
  /** Inspects the chosen example: 'before' is taken once, before the first step; 'after' is the current state. */
  inspect(which?: 'before' | 'after'): Promise<void>;
  evaluate(): Promise<void>;
  save(name: string): Promise<void>;
  dismiss(): void;
}

const emptyHistory = (): History => ({ steps: [], loss: [], evals: [] });
let frame = 0;
let inflight: Promise<void> | null = null;
/** Bumped by every start and reset: callbacks of an older run are ignored. */
let runToken = 0;

function exampleKey(s: AppState): string {
  return `${s.split}:${s.example}`;
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
  const onProgress = (p: RunProgress) => {
    const h = getState().history;
    const last = h.steps[h.steps.length - 1];
    if (p.step > 0 && Number.isFinite(p.loss) && p.step !== last) {
      h.steps.push(p.step);
      h.loss.push(p.loss);
    }
    if (p.heldoutLoss !== null || p.heldoutAccuracy !== null) {
      const e = h.evals[h.evals.length - 1];
      if (!e || e.step !== p.step || e.loss !== p.heldoutLoss || e.accuracy !== p.heldoutAccuracy) {
        if (!e || e.step !== p.step) h.evals.push({ step: p.step, loss: p.heldoutLoss, accuracy: p.heldoutAccuracy });
        else h.evals[h.evals.length - 1] = { step: p.step, loss: p.heldoutLoss, accuracy: p.heldoutAccuracy };
      }
    }
    const patch: Partial<RunStore> = { progress: p, state: getState().starting && p.state === 'paused' ? 'running' : p.state };
    if (p.message) patch.message = errorText(p.message);
    else if (p.step > 0 && p.state === 'running') {
      const diverging = divergence.push(p.step, p.loss);
      if (diverging) patch.message = `Warning: ${diverging}.`;
    }
    setState(patch);
    bump();
  };

  /**
   * Starts the run from the seed: the worker builds it and waits before its first step, the untrained
   * agents are inspected (the "before" view), then training goes on (or, for the step button, exactly
   * one step is taken and the run stays paused).
   */
  const begin = async (stepOnly: boolean) => {
    const token = ++runToken;
    divergence = new DivergenceWatch();
    const current = () => token === runToken;
    const config = runConfigOf(useApp.getState().state);
    setState({
      state: 'running', starting: true, pauseRequested: false, progress: null, message: null, history: emptyHistory(),
      version: getState().version + 1, config, before: null, beforeKey: null, after: null, afterStep: null, inspectError: null,
      evalRows: null, savedNote: null,
    });
    const engine = getEngine();
    const done = engine.startRun(config, proxy((p: RunProgress) => current() && onProgress(p)), { paused: true });
    await waitFor(() => getState().progress !== null || getState().state === 'error', done);
    if (!current() || getState().state === 'error') return;
    await getState().inspect('before');
    if (!current()) return;
    setState({ starting: false });
    if (getState().state === 'error') return;
    const trains = isTrainedMethod(config.method);
    if (stepOnly || getState().pauseRequested) {
      setState({ state: 'paused' });
      if (stepOnly && trains) {
        await engine.stepRun();
        if (current()) void getState().inspect('after');
      }
    } else await engine.resumeRun();
    await done;
    if (!current()) return;
    if (getState().state === 'running') setState({ state: 'done' });
    if (getState().state !== 'error') void getState().inspect('after');
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
    before: null,
    beforeKey: null,
    after: null,
    afterStep: null,
    inspectError: null,
    inspecting: false,
    evalRows: null,
    evaluating: false,
    saving: false,
    savedNote: null,

    async play() {
      const s = getState().state;
      try {
        if (s === 'paused' && getState().starting) setState({ pauseRequested: false, state: 'running' });
        else if (s === 'paused') {
          setState({ state: 'running' });
          await getEngine().resumeRun();
        } else if (s !== 'running') await begin(false);
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
      } catch (e) {
        setState({ message: errorText(e) });
      }
    },
    async step() {
      const s = getState().state;
      try {
        if (s === 'idle' || s === 'done' || s === 'stopped' || s === 'error') {
          await begin(true);
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
      runToken++;
      try {
        await getEngine().resetRun();
      } catch (e) {
        setState({ message: errorText(e) });
      }
      setState({
        state: 'idle', starting: false, pauseRequested: false, progress: null, history: emptyHistory(), version: getState().version + 1, config: null, before: null,
        beforeKey: null, after: null, afterStep: null, inspectError: null, evalRows: null, message: null, savedNote: null,
      });
    },
    configChanged() {
      const s = getState().state;
      if (s === 'done' || s === 'stopped' || s === 'error') void getState().reset();
    },
    async inspect(which = 'after') {
      if (getState().state === 'idle') return;
      // 'after' refreshes are skipped while one is in flight (the next tick retries); 'before' waits its turn.
      if (inflight && which === 'after') return;
      while (inflight) await inflight;
      const app = useApp.getState().state;
      const key = exampleKey(app);
      setState({ inspecting: true });
      const job = (async () => {
        try {
          const r = await getEngine().inspect(app.split, app.example);
          const step = getState().progress?.step ?? 0;
          if (which === 'before') setState({ before: r, beforeKey: key, inspectError: null });
          else setState({ after: r, afterStep: step, inspectError: null });
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
        setState({ evalRows: await getEngine().evaluate(['train', 'heldout', 'ood']) });
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
        setState({ savedNote: `Saved ${saved.length === 1 ? `adapter '${saved[0].name}'` : `${saved.length} adapters`} to the library.` });
        await useLibrary.getState().refresh();
      } catch (e) {
        setState({ message: errorText(e) });
      } finally {
        setState({ saving: false });
      }
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

export const isTrainedMethod = (m: MethodName) => TRAINED_METHODS.includes(m);

// ---------------------------------------------------------------- library

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
  loaded: boolean;
  notes: string[];
  usage: number | null;
  quota: number | null;
  persisted: boolean | null;
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
  return {
    models: [],
    adapters: [],
    loaded: false,
    notes: [],
    usage: null,
    quota: null,
    persisted: null,
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
        const blobs = await Promise.all(files.map(async (f) => ({ name: f.webkitRelativePath || f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
        const model = useApp.getState().state.model;
        const r = await getEngine().importFiles(blobs, model);
        setState({ notice: `Imported ${r.kind === 'model' ? 'base model' : 'adapter'} '${r.name}'.` });
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
  run(): Promise<void>;
}

export const useCompare = create<CompareStore>((setState, getState) => ({
  running: false,
  message: '',
  fraction: 0,
  report: null,
  error: null,
  async run() {
    if (getState().running) return;
    const s = useApp.getState().state;
    const { method: _m, seed: _s, ...base } = runConfigOf(s);
    void _m;
    void _s;
    setState({ running: true, message: 'starting…', fraction: 0, error: null });
    try {
      const report = await getEngine().compare(
        { base, methods: s.compareMethods, seeds: s.compareSeeds },
        proxy((message: string, fraction: number) => setState({ message, fraction })),
      );
      setState({ report, fraction: 1, message: 'done' });
    } catch (e) {
      setState({ error: errorText(e) });
    } finally {
      setState({ running: false });
    }
  },
}));

export { DEFAULT_STATE };

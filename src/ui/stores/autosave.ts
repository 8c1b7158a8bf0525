// The live run's record: made at its start, rewritten every few seconds while it runs (with its
// adapters and AdamW's state, a checkpoint, every CHECKPOINT_TICKS-th time) and at its end; and, on
// the next visit, the records a closed or reloaded tab left running, marked interrupted. Closing the
// tab mid-run asks first and saves the record.
import type { AdapterData, RunEntry, RunRecord, RunTrainingState } from '../../worker/api';
import { isTrainedMethod } from '../../mas/run-types';
import { runName } from '../../mas/run-record';
import { adapterInfo } from '../../storage/records';
import { errorText, getEngine } from '../engine';
import { useCompare } from './compare';
import { useEnv } from './env';
import { useLibrary } from './library';
import { useRun, type RunStore } from './run';

/** Seconds between saves of a live run's record. */
export const AUTOSAVE_SECONDS = 5;
/** Every this many autosaves, the record takes the run's adapters and training state too (30 s). */
export const CHECKPOINT_TICKS = 6;
/** A record still marked running but not saved for this long belongs to no live tab: it was interrupted. */
const STALE_SECONDS = 30;
const LIVE_KEY = 'latent-playground:live-run';

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

export interface RunRecorder {
  /** A new leg of the run (a new run, or one continued from its record): returns when it began (ms). */
  beginLeg(cont?: RunRecord): number;
  /** Forgets the adapters last read (the run was reset). */
  forget(): void;
  /** The run's record as it stands (null when there is no run). */
  recordOf(): RunRecord | null;
  /** Writes the run's record now (with its adapters and training state when `withAdapters`). */
  persist(withAdapters?: boolean): Promise<void>;
  /** Saves the record every AUTOSAVE_SECONDS while the run is running or paused (restarting the timer). */
  startAutosave(): void;
  stopAutosave(): void;
  /** The tab no longer holds a live run. */
  clearLive(): void;
}

/** The record keeping of the run store (a function declaration: the store calls it while the modules are still being set up). */
export function runRecorder(getState: () => RunStore, setState: (patch: Partial<RunStore>) => void): RunRecorder {
  let finalAdapters: { list: AdapterData[]; step: number; training: RunTrainingState | null; fuser?: Map<string, Float32Array> | null } | null = null;
  /** A continued run's time before this leg (0 for a new run), and when this leg began. */
  let priorWall = 0;
  let priorTrain = 0;
  let legStart = 0;
  let saving: Promise<void> | null = null;
  let autosave: ReturnType<typeof setInterval> | null = null;

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
        initial: s.initial, final: fin?.list ?? [], finalStep: fin?.step ?? null, training: fin?.training ?? null, ...(fin?.fuser ? { fuser: fin.fuser } : {}), saved: s.savedAdapters.slice(),
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
          finalAdapters = { list: cp.adapters, step: cp.step, training: cp.training, fuser: cp.fuser ?? null };
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

  return {
    beginLeg(cont) {
      finalAdapters = cont && cont.adapters.training ? { list: cont.adapters.final, step: cont.adapters.training.step, training: cont.adapters.training, fuser: cont.adapters.fuser ?? null } : null;
      priorWall = cont?.wallSeconds ?? 0;
      priorTrain = cont?.trainSeconds ?? 0;
      legStart = Date.now();
      return legStart;
    },
    forget() {
      finalAdapters = null;
    },
    recordOf,
    persist,
    startAutosave() {
      stopAutosave();
      let ticks = 0;
      autosave = setInterval(() => {
        const st = getState().state;
        // every CHECKPOINT_TICKS-th save reads the adapters and AdamW's state too: a closed tab's run continues from there
        if (st === 'running' || st === 'paused') void persist(++ticks % CHECKPOINT_TICKS === 0);
      }, AUTOSAVE_SECONDS * 1000);
    },
    stopAutosave,
    clearLive() {
      sessionSet(null);
    },
  };
}

/** Marks the records a closed or reloaded tab left 'running' as interrupted (never `live`, this tab's run); returns the newest of them. */
export async function findInterrupted(runs: RunEntry[], live: string | null): Promise<RunEntry | null> {
  const mine = sessionGet();
  const now = Date.now();
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

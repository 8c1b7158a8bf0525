// Several methods and seeds on the same task (the Compare panel), stored as a run record of kind
// 'compare'; a stored comparison or a report file opened read-only.
import { proxy } from 'comlink';
import { create } from 'zustand';
import type { ExperimentReport, RunRecord } from '../../worker/api';
import { newId } from '../../storage/library';
import { readExperimentReport } from '../../storage/report';
import { errorText, getEngine } from '../engine';
import { runConfigOf } from '../state';
import { useApp } from './app';
import { AUTOSAVE_SECONDS } from './autosave';
import { useEnv } from './env';
import { useLibrary } from './library';
import { baseBlocker } from './setup-check';

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
    // a base that cannot run is refused here, before any record is written (no "error" record of a comparison that never started)
    const lib = useLibrary.getState();
    const why = baseBlocker(s, lib.models, lib.loaded);
    if (why) {
      setState({ error: `The comparison cannot start: ${why}.` });
      return;
    }
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

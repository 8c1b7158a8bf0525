// What the run panels show: the live run, or a stored one opened read-only from the Runs list; and
// the setup they show beside it (Setup, Agents and messages): the page's own, or, while a stored run
// is open, that run's configuration, read-only, until it is copied into a new run.
import { useMemo } from 'react';
import type { AdapterData, EvalRowCi, RunConfig, RunProgress, RunRecord, RunState, StoredInspection } from '../../worker/api';
import { stateOfRunConfig, type AppState } from '../state';
import { useApp } from './app';
import { useRun, type History } from './run';

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

/** The setup the Setup panel and the topology editor show. */
export interface ShownSetup {
  /** The page's setup, or the open record's configuration over it (its base model included). */
  state: AppState;
  /** The stored run whose configuration is shown (read-only), or null: the page's own setup. */
  record: RunRecord | null;
}

/** The page state a stored run's configuration describes (its base model as recorded). */
export function setupOfRecord(base: AppState, rec: RunRecord): AppState {
  return { ...stateOfRunConfig(base, rec.config), model: rec.baseModelId || rec.config.modelId };
}

export function useShownSetup(): ShownSetup {
  const app = useApp((s) => s.state);
  const record = useRun((s) => s.viewing);
  const state = useMemo(() => (record ? setupOfRecord(app, record) : app), [app, record]);
  return { state, record };
}

/** Why the open record's setup cannot be copied into a new run now (null: it can). */
export function copyBlocker(runState: RunState): string | null {
  return runState === 'running' || runState === 'paused' ? 'a run is active: reset it first' : null;
}

/**
 * Copies the open record's configuration into the page's setup (and the link) and closes the record:
 * the setup is editable again with those values, ready to train as a new run.
 */
export function copyShownIntoNewRun(): void {
  const run = useRun.getState();
  const rec = run.viewing;
  if (!rec) return;
  const why = copyBlocker(run.state);
  if (why) {
    useRun.setState({ message: `The stored run's setup was not copied: ${why}.` });
    return;
  }
  const app = useApp.getState();
  run.closeView();
  app.replace(setupOfRecord(app.state, rec));
}

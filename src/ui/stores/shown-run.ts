// What the run panels show: the live run, or a stored one opened read-only from the Runs list.
import type { AdapterData, EvalRowCi, RunConfig, RunProgress, RunRecord, RunState, StoredInspection } from '../../worker/api';
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

// Whether the page's setup can start a run here, one answer for Train (the run bar) and Compare: the
// setup's own verdict, the base model (in the library, with a tokenizer), and the worker's memory
// estimate of the run (asked by the run bar whenever the setup changes; kept here so Compare reads
// the same refusal instead of starting a comparison that fails and leaves an error record).
import { useEffect } from 'react';
import { create } from 'zustand';
import type { ModelEntry } from '../../storage/records';
import type { MethodName, RunMemoryReport } from '../../worker/api';
import { errorText, getEngine } from '../engine';
import { runConfigOf, type AppState } from '../state';
import { setupVerdict } from '../verdict';

interface SetupCheck {
  /** The run configuration (JSON) the estimate is of; '' when none was asked. */
  key: string;
  report: RunMemoryReport | null;
  error: string | null;
}

export const useSetupCheck = create<SetupCheck>(() => ({ key: '', report: null, error: null }));

/** The key of a setup's estimate. */
export const setupKey = (app: AppState): string => JSON.stringify(runConfigOf(app));

/**
 * The GPU memory the run of the current setup would hold, asked of the worker (which builds it on an
 * accounting device, nothing allocated) whenever the setup changes; a refusal when it cannot run here.
 */
export function useRunMemory(app: AppState, enabled: boolean): { report: RunMemoryReport | null; error: string | null } {
  const key = enabled ? setupKey(app) : '';
  useEffect(() => {
    if (!key) {
      useSetupCheck.setState({ key: '', report: null, error: null });
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      getEngine().estimateRun(JSON.parse(key)).then(
        (report) => live && useSetupCheck.setState({ key, report, error: null }),
        (e) => live && useSetupCheck.setState({ key, report: null, error: errorText(e) }),
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [key]);
  const out = useSetupCheck();
  return out.key === key ? { report: out.report, error: out.error } : { report: null, error: null };
}

/** The base model's refusal, before any estimate: not in the library, or no tokenizer (named as the library shows it). */
export function baseBlocker(app: AppState, models: readonly ModelEntry[], libraryLoaded: boolean): string | null {
  if (!libraryLoaded) return null;
  const m = models.find((x) => x.id === app.model);
  if (!m) return `the base model '${app.model}' is not in the library`;
  if (m.tokenizer === false) return `the base model '${m.name}' has no tokenizer.json, so it cannot run the tasks (import it again with its tokenizer)`;
  return null;
}

/**
 * Why a comparison of these methods cannot start (null: it can): each method's setup verdict, the
 * base model, and the run bar's estimate of the current setup when it refused.
 */
export function compareBlocker(app: AppState, methods: readonly MethodName[], models: readonly ModelEntry[], libraryLoaded: boolean, check: SetupCheck): string | null {
  const base = baseBlocker(app, models, libraryLoaded);
  if (base) return base;
  for (const method of methods) {
    const v = setupVerdict({ ...app, method });
    if (v.reason) return `${method} cannot run this setup: ${v.reason}`;
  }
  if (check.key && check.key === setupKey(app)) {
    const refusal = check.error ?? check.report?.problem ?? null;
    if (refusal) return `this setup cannot run here: ${refusal}`;
  }
  return null;
}

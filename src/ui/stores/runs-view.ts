// The Runs table's view (sort, filters, the runs ticked for comparing, the notes editor) and the
// records that Compare runs draws, read from the library once per saved state of each run.
import { create } from 'zustand';
import type { RunConfig, RunCurves, RunRecord } from '../../worker/api';
import type { OverlayMetric, OverlayX } from '../../storage/runs-compare';
import type { RunsColumn, RunsFilters, SortDir } from '../../storage/runs-table';
import { errorText, getEngine } from '../engine';
import { useLibrary } from './library';

/** At most this many runs on one chart (each keeps its own colour). */
export const MAX_COMPARED = 8;

/** What Compare runs needs of a record (its adapters stay in the library). */
export interface ComparedRun {
  id: string;
  name: string;
  updatedAt: number;
  config: RunConfig;
  curves: RunCurves;
  trainSeconds: number;
  stepsDone: number;
}

interface RunsViewStore {
  /** null: the library's order (newest first). */
  sort: { col: RunsColumn; dir: SortDir } | null;
  filters: RunsFilters;
  /** Ids of the runs ticked for Compare runs, in the order they were ticked. */
  selected: string[];
  /** The run whose notes and tags are being edited. */
  editing: string | null;
  metric: OverlayMetric;
  x: OverlayX;
  logY: boolean;
  /** Records read for the chart, by id (replaced when the run was saved again since). */
  loaded: Record<string, ComparedRun>;
  loadError: string | null;
  sortBy(col: RunsColumn): void;
  setFilter(col: RunsColumn, text: string): void;
  clearFilters(): void;
  toggle(id: string): void;
  clearSelection(): void;
  /** Unticks runs no longer in the library (deleted). */
  keepOnly(ids: readonly string[]): void;
  setEditing(id: string | null): void;
  setView(patch: Partial<Pick<RunsViewStore, 'metric' | 'x' | 'logY'>>): void;
  /** Reads the records of `want` (id and the updatedAt its list entry shows) that are not read yet. */
  load(want: { id: string; updatedAt: number }[]): Promise<void>;
  /** Writes a run's notes and tags into its record (both always: an empty one clears it). */
  saveNotes(id: string, notes: string, tags: string[]): Promise<void>;
}

export const useRunsView = create<RunsViewStore>((setState, getState) => ({
  sort: null,
  filters: {},
  selected: [],
  editing: null,
  metric: 'loss',
  x: 'step',
  logY: false,
  loaded: {},
  loadError: null,
  sortBy(col) {
    const s = getState().sort;
    // a first click sorts the way that column is usually read (best and newest first), a second reverses
    const first: SortDir = col === 'heldout' || col === 'date' || col === 'steps' ? 'desc' : 'asc';
    setState({ sort: s && s.col === col ? { col, dir: s.dir === 'asc' ? 'desc' : 'asc' } : { col, dir: first } });
  },
  setFilter(col, text) {
    setState({ filters: { ...getState().filters, [col]: text } });
  },
  clearFilters() {
    setState({ filters: {} });
  },
  toggle(id) {
    const sel = getState().selected;
    if (sel.includes(id)) setState({ selected: sel.filter((x) => x !== id) });
    else if (sel.length < MAX_COMPARED) setState({ selected: [...sel, id] });
  },
  clearSelection() {
    setState({ selected: [] });
  },
  keepOnly(ids) {
    const sel = getState().selected;
    const kept = sel.filter((id) => ids.includes(id));
    if (kept.length !== sel.length) setState({ selected: kept });
  },
  setEditing(id) {
    setState({ editing: id });
  },
  setView(patch) {
    setState(patch);
  },
  async load(want) {
    const have = getState().loaded;
    const missing = want.filter((w) => have[w.id]?.updatedAt !== w.updatedAt);
    if (!missing.length) return;
    try {
      const recs = await Promise.all(missing.map((w) => getEngine().runRecord(w.id)));
      const next = { ...getState().loaded };
      for (const r of recs) next[r.id] = slim(r);
      setState({ loaded: next, loadError: null });
    } catch (e) {
      setState({ loadError: `A run's record could not be read: ${errorText(e)}` });
    }
  },
  async saveNotes(id, notes, tags) {
    const rec = await getEngine().runRecord(id);
    await getEngine().saveRun({ ...rec, notes, tags });
    await useLibrary.getState().refreshRuns();
  },
}));

function slim(r: RunRecord): ComparedRun {
  return { id: r.id, name: r.name, updatedAt: r.updatedAt, config: r.config, curves: r.curves, trainSeconds: r.trainSeconds, stepsDone: r.stepsDone };
}

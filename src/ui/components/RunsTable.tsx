// The Runs table (issue 21 item 4): every stored record (training, evaluation, comparison, imported),
// sortable and filterable by method, task, base, seed, final held-out accuracy, steps, date and tags;
// each run's notes and tags edited in place and kept in its record; runs ticked here are overlaid by
// Compare runs below. A run takes two lines (its name, state and buttons; then its columns) so that
// the table fits the library panel at 1280 px.
import { useEffect, useMemo, useState } from 'react';
import type { RunEntry } from '../../worker/api';
import { isTrainedMethod, type MethodName } from '../../mas/run-types';
import { dateText, filterRuns, MAX_NOTES_CHARS, parseTags, RUNS_COLUMNS, runsRow, sortRuns, type RunsColumn, type RunsRow } from '../../storage/runs-table';
import { errorText } from '../engine';
import { formatBytes, formatPercent } from '../format';
import { useLibrary } from '../stores/library';
import { useRun } from '../stores/run';
import { MAX_COMPARED, useRunsView } from '../stores/runs-view';
import { ConfirmDelete } from './ConfirmDelete';

const HEADS: Record<RunsColumn, { label: string; hint: string; placeholder: string }> = {
  method: { label: 'method', hint: 'the method (a comparison: any of its methods)', placeholder: 'filter' },
  task: { label: 'task', hint: 'task and difficulty', placeholder: 'filter' },
  base: { label: 'base', hint: 'the frozen base model', placeholder: 'filter' },
  seed: { label: 'seed', hint: 'a seed: 7, >3, 1..5', placeholder: '1..5' },
  heldout: { label: 'held-out', hint: 'final held-out accuracy in percent: >50, 20..60', placeholder: '>50' },
  steps: { label: 'steps', hint: 'steps done: 200, >=100', placeholder: '>10' },
  date: { label: 'date', hint: 'a part of YYYY-MM-DD HH:MM', placeholder: 'YYYY-MM' },
  tags: { label: 'tags', hint: 'runs holding every tag typed', placeholder: 'filter' },
};

function statusTag(r: RunEntry) {
  const cls = r.status === 'done' ? 'ok-tag' : r.status === 'error' || r.status === 'interrupted' ? 'warn' : '';
  return <span className={`tag ${cls}`}>{r.status}</span>;
}

/** The notes and tags of one run, edited in a row under it. */
function NotesEditor({ entry, onClose }: { entry: RunEntry; onClose(): void }) {
  const saveNotes = useRunsView((s) => s.saveNotes);
  const [notes, setNotes] = useState(entry.notes ?? '');
  const [tags, setTags] = useState((entry.tags ?? []).join(', '));
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const save = async () => {
    const t = parseTags(tags);
    if ('error' in t) {
      setError(`Tags: ${t.error}.`);
      return;
    }
    setSaving(true);
    try {
      await saveNotes(entry.id, notes.trim(), t.tags);
      onClose();
    } catch (e) {
      setError(`The notes could not be saved: ${errorText(e)}`);
    } finally {
      setSaving(false);
    }
  };
  return (
    <div className="notes-editor" data-testid="notes-editor">
      <label className="small">
        Notes
        <textarea value={notes} maxLength={MAX_NOTES_CHARS} rows={3} onChange={(e) => setNotes(e.target.value)} data-testid="run-notes-input" placeholder="what this run tried, what it showed" />
      </label>
      <label className="small">
        Tags <span className="muted">(single words, separated by commas or spaces)</span>
        <input value={tags} onChange={(e) => setTags(e.target.value)} data-testid="run-tags-input" placeholder="baseline, lr-sweep" onKeyDown={(e) => e.key === 'Enter' && void save()} />
      </label>
      {error && <div className="alert compact" role="alert">{error}</div>}
      <div className="actions-wrap">
        <button type="button" className="btn tiny primary" disabled={saving} onClick={() => void save()} data-testid="run-notes-save">
          Save
        </button>
        <button type="button" className="btn tiny" onClick={onClose}>
          Cancel
        </button>
      </div>
    </div>
  );
}

function RunLines({ r }: { r: RunsRow }) {
  const e = r.entry;
  const lib = useLibrary();
  const view = useRun((s) => s.view);
  const viewing = useRun((s) => s.viewing?.id ?? null);
  const liveId = useRun((s) => s.recordId);
  const liveState = useRun((s) => s.state);
  const continueRun = useRun((s) => s.continueRun);
  const selected = useRunsView((s) => s.selected);
  const toggle = useRunsView((s) => s.toggle);
  const editing = useRunsView((s) => s.editing === e.id);
  const setEditing = useRunsView((s) => s.setEditing);
  const setFilter = useRunsView((s) => s.setFilter);
  const busy = !!lib.busy;
  const live = e.id === liveId && (liveState === 'running' || liveState === 'paused');
  // a record still being written (the live run's autosave, a comparison under way) takes notes when it ends
  const writing = e.status === 'running' || e.status === 'paused';
  const ticked = selected.includes(e.id);
  const trains = r.methods.some((m) => isTrainedMethod(m as MethodName));
  // the run open above is marked by the accent at its left edge; ticked runs are tinted
  const cls = [e.id === viewing ? 'current' : '', ticked ? 'ticked' : ''].filter(Boolean).join(' ') || undefined;
  return (
    <tbody data-testid="run-row" className={cls}>
      <tr className="run-head">
        <td rowSpan={2} className="pick">
          <input
            type="checkbox" checked={ticked} disabled={e.kind !== 'run' || (!ticked && selected.length >= MAX_COMPARED)} onChange={() => toggle(e.id)}
            aria-label={`Compare ${e.name}`} data-testid="run-pick"
            title={e.kind !== 'run' ? 'A comparison has its own charts: open it' : !ticked && selected.length >= MAX_COMPARED ? `At most ${MAX_COMPARED} runs on one chart` : 'Overlay this run in Compare runs below'}
          />
        </td>
        <td colSpan={RUNS_COLUMNS.length}>
          <div className="run-line">
            <div className="run-title">
              <span className="name" title={`${e.name} · ${formatBytes(e.size)} stored`} data-testid="run-name">{e.name}</span>
              {statusTag(e)}
              {live && <span className="tag">live</span>}
              {e.kind === 'compare' && <span className="tag" title={`${e.methods?.length ?? 0} methods × ${e.seeds?.length ?? 0} seeds`}>comparison</span>}
              {e.notes && <div className="run-notes small muted" title={e.notes} data-testid="run-notes">{e.notes}</div>}
            </div>
            <div className="actions-wrap">
              <button type="button" className="btn tiny" disabled={live} title={live ? 'This run is live above' : 'Open its curves, tables and heatmaps (read-only)'} onClick={() => void view(e.id)} data-testid="open-run">
                Open
              </button>
              {e.continueStep !== undefined && e.continueStep !== null && (
                <button
                  type="button" className="btn tiny" disabled={busy || live || liveState === 'running' || liveState === 'paused'} onClick={() => void continueRun(e.id)}
                  title={`Train on from step ${e.continueStep} (its last checkpoint) to ${e.totalSteps}, from its adapters and AdamW's state there: the same as if it had not stopped`} data-testid="continue-run"
                >
                  Continue
                </button>
              )}
              {e.kind === 'run' && (
                <button type="button" className="btn tiny" disabled={busy || live} onClick={() => void lib.exportRun(e.id)} title="One zip: the run bundle with CSV, SVG and PNG, its notes and tags in results/record.json" data-testid="export-run-row">
                  Export
                </button>
              )}
              <button
                type="button" className="btn tiny" disabled={writing} onClick={() => setEditing(editing ? null : e.id)} data-testid="edit-notes"
                title={writing ? 'Its record is still being written: add tags and notes when it ends or stops' : 'Tags and notes of this run, kept in its record and its export'}
              >
                {/* not "Notes": a button named so would match getByRole('button', { name: 'No' }) of the delete confirmation */}
                Tags
              </button>
              <ConfirmDelete what={e.name} disabled={busy || live} onConfirm={() => void lib.removeRun(e.id)} />
            </div>
          </div>
        </td>
      </tr>
      <tr className="run-data">
        <td title={r.methods.join(', ')}>{e.kind === 'compare' ? `${r.methods.length} methods` : r.methods[0]}</td>
        <td className="nowrap">{r.task}</td>
        <td className="base-cell" title={`${r.base} (${e.baseModelId})`}>{r.base}</td>
        <td className="num">{r.seeds.length > 1 ? `${r.seeds[0]}–${r.seeds[r.seeds.length - 1]}` : r.seeds[0]}</td>
        <td className="num" data-testid="run-heldout">{formatPercent(r.heldout)}</td>
        <td className="num" title={!trains ? 'evaluation only: no method here trains' : e.kind === 'compare' ? 'steps of each trained method of the comparison' : `${e.stepsDone} of ${e.totalSteps} steps done`}>
          {!trains ? 'eval only' : e.kind === 'compare' ? `${r.steps} each` : `${e.stepsDone}/${e.totalSteps}`}
        </td>
        <td className="date-cell">
          {dateText(r.date).split(' ').map((p) => <span key={p}>{p}</span>)}
        </td>
        <td className="tags-cell" data-testid="run-tags">
          {r.tags.map((t) => (
            <button type="button" key={t} className="tag tag-btn" title={`Show only runs tagged ${t}`} onClick={() => setFilter('tags', t)}>
              {t}
            </button>
          ))}
        </td>
      </tr>
      {editing && (
        <tr className="run-edit">
          <td />
          <td colSpan={RUNS_COLUMNS.length}>
            <NotesEditor entry={e} onClose={() => setEditing(null)} />
          </td>
        </tr>
      )}
    </tbody>
  );
}

/** The Runs list: every stored run (training, evaluation-only, comparisons), reopened read-only after a reload. */
export function RunsTable() {
  const lib = useLibrary();
  const sort = useRunsView((s) => s.sort);
  const filters = useRunsView((s) => s.filters);
  const sortBy = useRunsView((s) => s.sortBy);
  const setFilter = useRunsView((s) => s.setFilter);
  const clearFilters = useRunsView((s) => s.clearFilters);
  const names = useMemo(() => new Map(lib.models.map((m) => [m.id, m.name])), [lib.models]);
  const all = useMemo(() => lib.runs.map((e) => runsRow(e, (id) => names.get(id), (m) => isTrainedMethod(m as MethodName))), [lib.runs, names]);
  const { rows: kept, errors } = useMemo(() => filterRuns(all, filters), [all, filters]);
  const rows = sort ? sortRuns(kept, sort.col, sort.dir) : kept;
  const filtering = RUNS_COLUMNS.some((c) => filters[c]?.trim());
  const keepOnly = useRunsView((s) => s.keepOnly);
  useEffect(() => {
    if (lib.loaded) keepOnly(lib.runs.map((e) => e.id));
  }, [lib.loaded, lib.runs, keepOnly]);
  const cols = RUNS_COLUMNS.length + 1;
  return (
    <>
      {all.length > 0 && (
        <div className="runs-tools small muted" data-testid="runs-count">
          {filtering ? `${rows.length} of ${all.length} runs match the filters` : `${all.length} run${all.length === 1 ? '' : 's'}`}
          {all.length > 1 ? ' · tick runs to overlay them below' : ''}
          {filtering && (
            <button type="button" className="link" onClick={clearFilters} data-testid="runs-clear-filters">
              clear filters
            </button>
          )}
        </div>
      )}
      <div className="table-wrap">
        <table className="table lib runs" data-testid="runs-table">
          <thead>
            <tr>
              <th className="pick" />
              {RUNS_COLUMNS.map((c) => {
                const on = sort?.col === c;
                return (
                  <th key={c} aria-sort={on ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none'}>
                    <button type="button" className="sort" onClick={() => sortBy(c)} title={`Sort by ${HEADS[c].hint}`} data-testid={`runs-sort-${c}`}>
                      {HEADS[c].label}
                      <span className="arrow" aria-hidden>{on ? (sort.dir === 'asc' ? '▲' : '▼') : ''}</span>
                    </button>
                  </th>
                );
              })}
            </tr>
            {all.length > 0 && (
              <tr className="filters">
                <th className="pick" />
                {RUNS_COLUMNS.map((c) => (
                  <th key={c}>
                    <input
                      value={filters[c] ?? ''} onChange={(ev) => setFilter(c, ev.target.value)} placeholder={HEADS[c].placeholder}
                      aria-label={`Filter by ${HEADS[c].hint}`} title={errors[c] ?? `Filter: ${HEADS[c].hint}`} className={errors[c] ? 'bad' : undefined} data-testid={`runs-filter-${c}`}
                    />
                  </th>
                ))}
              </tr>
            )}
          </thead>
          {lib.loaded && all.length === 0 && (
            <tbody>
              <tr>
                <td colSpan={cols} className="muted">
                  No runs yet: every training, evaluation and comparison is kept here when it ends (and every few seconds while it runs).
                </td>
              </tr>
            </tbody>
          )}
          {all.length > 0 && rows.length === 0 && (
            <tbody>
              <tr>
                <td colSpan={cols} className="muted" data-testid="runs-none-match">
                  No run matches the filters.
                </td>
              </tr>
            </tbody>
          )}
          {rows.map((r) => (
            <RunLines key={r.entry.id} r={r} />
          ))}
        </table>
      </div>
      {Object.entries(errors).map(([c, msg]) => (
        <div key={c} className="alert compact" role="alert" data-testid="runs-filter-error">
          The {HEADS[c as RunsColumn].label} filter is not used: {msg}.
        </div>
      ))}
    </>
  );
}

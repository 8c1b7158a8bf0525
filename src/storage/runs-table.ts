// The Runs table as data (issue 21 item 4): a stored run's line as the table's columns, sorting,
// per-column filters, and a run's notes and tags (checked where a record is read back, and parsed
// from what the page's editor holds). Pure functions: no DOM, tested in tests/runs-table.test.ts.
import type { RunEntry } from './records';

export const RUNS_COLUMNS = ['method', 'task', 'base', 'seed', 'heldout', 'steps', 'date', 'tags'] as const;
export type RunsColumn = (typeof RUNS_COLUMNS)[number];
export type SortDir = 'asc' | 'desc';

/** Most tags on one run, and the longest tag and notes (they live in the runs index, read at every listing). */
export const MAX_TAGS = 16;
export const MAX_TAG_CHARS = 32;
export const MAX_NOTES_CHARS = 4000;

/** One line of the table: the entry and the values its columns show, sort and filter. */
export interface RunsRow {
  entry: RunEntry;
  /** A comparison's methods (one for a run). */
  methods: string[];
  /** '<task> d<difficulty>'. */
  task: string;
  base: string;
  /** A comparison's seeds (one for a run). */
  seeds: number[];
  /** Final held-out accuracy (0..1), or null when the run was never evaluated on held-out. */
  heldout: number | null;
  /** Steps done (a finished comparison: the steps each of its trained methods did, 0 when none trains; it keeps no count of its own). */
  steps: number;
  date: number;
  tags: string[];
}

/** `trains` says whether a method trains (src/mas/run-types.ts isTrainedMethod; the page passes it in, storage sits below mas). */
export function runsRow(e: RunEntry, baseName: (id: string) => string | undefined, trains: (method: string) => boolean = () => true): RunsRow {
  const methods = e.kind === 'compare' && e.methods?.length ? e.methods.slice() : [e.method];
  return {
    entry: e,
    methods,
    task: `${e.task} d${e.difficulty}`,
    base: baseName(e.baseModelId) ?? e.baseName ?? e.baseModelId,
    seeds: e.kind === 'compare' && e.seeds?.length ? e.seeds.slice() : [e.seed],
    heldout: e.heldoutAccuracy,
    steps: e.kind === 'compare' && e.status === 'done' && methods.some(trains) ? e.totalSteps : e.stepsDone,
    date: e.createdAt,
    tags: e.tags ?? [],
  };
}

/** The local date and time a table shows: 2026-12-07 17:05. */
export function dateText(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The value a column sorts by (null sorts last in either direction). */
function sortKey(r: RunsRow, col: RunsColumn): string | number | null {
  switch (col) {
    case 'method': return r.methods.join(',');
    case 'task': return r.task;
    case 'base': return r.base.toLowerCase();
    case 'seed': return r.seeds[0];
    case 'heldout': return r.heldout;
    case 'steps': return r.steps;
    case 'date': return r.date;
    case 'tags': return r.tags.length ? r.tags.join(',').toLowerCase() : null;
  }
}

/** Rows sorted by one column; ties keep the order given (newest first from the library), empty values last. */
export function sortRuns(rows: readonly RunsRow[], col: RunsColumn, dir: SortDir): RunsRow[] {
  const sign = dir === 'asc' ? 1 : -1;
  return rows
    .map((r, i) => ({ r, i, k: sortKey(r, col) }))
    .sort((a, b) => {
      if (a.k === null || b.k === null) return a.k === b.k ? a.i - b.i : a.k === null ? 1 : -1;
      const c = typeof a.k === 'number' && typeof b.k === 'number' ? a.k - b.k : String(a.k).localeCompare(String(b.k), 'en', { numeric: true });
      return c !== 0 ? sign * c : a.i - b.i;
    })
    .map((x) => x.r);
}

export type NumberTest = (v: number) => boolean;

/**
 * A numeric filter as typed: `7` or `=7`, `>0.5`, `>=10`, `<3`, `<=3`, or a range `2..5` (both ends
 * included). Returns the test, or the reason it cannot be read.
 */
export function parseNumberFilter(text: string): { test: NumberTest } | { error: string } {
  const t = text.trim().replace(/\s+/g, '').replace(/%$/, '');
  const num = (s: string) => (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s) ? Number(s) : NaN);
  const range = /^(.+?)\.\.(.+)$/.exec(t);
  if (range) {
    const lo = num(range[1]);
    const hi = num(range[2]);
    if (Number.isNaN(lo) || Number.isNaN(hi)) return { error: `'${text}' is not a range like 2..5` };
    if (lo > hi) return { error: `'${text}': the range's first end is above its second` };
    return { test: (v) => v >= lo && v <= hi };
  }
  const m = /^(>=|<=|>|<|=)?(.*)$/.exec(t)!;
  const v0 = num(m[2]);
  if (Number.isNaN(v0)) return { error: `'${text}' is not a number, a comparison (>0.5, <=100) or a range (2..5)` };
  switch (m[1]) {
    case '>': return { test: (v) => v > v0 };
    case '>=': return { test: (v) => v >= v0 };
    case '<': return { test: (v) => v < v0 };
    case '<=': return { test: (v) => v <= v0 };
    default: return { test: (v) => v === v0 };
  }
}

export type RunsFilters = Partial<Record<RunsColumn, string>>;

/**
 * Rows that pass every filter. Text columns (method, task, base) match a case-insensitive part of the
 * value (any of a comparison's methods); seed and steps take a numeric filter (any of a comparison's
 * seeds); held-out takes one in percent (`>50` is above 50%; a run never evaluated passes none); date
 * matches a part of its local `YYYY-MM-DD HH:MM`; tags: every word typed must be one of the run's tags
 * (case-insensitive). A filter that cannot be read is reported by column and filters nothing.
 */
export function filterRuns(rows: readonly RunsRow[], filters: RunsFilters): { rows: RunsRow[]; errors: Partial<Record<RunsColumn, string>> } {
  const errors: Partial<Record<RunsColumn, string>> = {};
  const tests: ((r: RunsRow) => boolean)[] = [];
  const part = (s: string) => s.trim().toLowerCase();
  for (const col of RUNS_COLUMNS) {
    const text = filters[col]?.trim();
    if (!text) continue;
    const q = part(text);
    switch (col) {
      case 'method': tests.push((r) => r.methods.some((m) => m.toLowerCase().includes(q))); break;
      case 'task': tests.push((r) => r.task.toLowerCase().includes(q)); break;
      case 'base': tests.push((r) => r.base.toLowerCase().includes(q)); break;
      case 'date': tests.push((r) => dateText(r.date).includes(q)); break;
      case 'tags': {
        const want = q.split(/[\s,]+/).filter(Boolean);
        tests.push((r) => want.every((w) => r.tags.some((t) => t.toLowerCase() === w)));
        break;
      }
      case 'seed':
      case 'steps':
      case 'heldout': {
        const f = parseNumberFilter(text);
        if ('error' in f) {
          errors[col] = f.error;
          break;
        }
        if (col === 'seed') tests.push((r) => r.seeds.some(f.test));
        else if (col === 'steps') tests.push((r) => f.test(r.steps));
        // in percent, rounded as the table shows it (one decimal), so `=50` finds what reads 50.0%
        else tests.push((r) => r.heldout !== null && f.test(Math.round(r.heldout * 1000) / 10));
        break;
      }
    }
  }
  return { rows: rows.filter((r) => tests.every((t) => t(r))), errors };
}

/** A tag problem, or null: 1..MAX_TAG_CHARS characters, no comma, no space at either end, no control character. */
function tagProblem(t: string): string | null {
  if (!t.length) return 'a tag is empty';
  if (t.length > MAX_TAG_CHARS) return `the tag '${t.slice(0, 40)}…' is longer than ${MAX_TAG_CHARS} characters`;
  if (t.includes(',') || /\s/.test(t)) return `the tag '${t}' holds a comma or a space (tags are single words; separate them with commas or spaces)`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(t)) return `the tag ${JSON.stringify(t)} holds a control character`;
  return null;
}

/** Tags as typed in the editor (separated by commas or spaces), duplicates (case-insensitive) dropped; or why not. */
export function parseTags(text: string): { tags: string[] } | { error: string } {
  const tags: string[] = [];
  for (const t of text.split(/[\s,]+/).filter(Boolean)) {
    const p = tagProblem(t);
    if (p) return { error: p };
    if (!tags.some((x) => x.toLowerCase() === t.toLowerCase())) tags.push(t);
  }
  if (tags.length > MAX_TAGS) return { error: `${tags.length} tags: a run holds at most ${MAX_TAGS}` };
  return { tags };
}

/**
 * A record's `notes` and `tags` as read back (results/record.json of an exported run): absent is
 * none, anything else of the wrong type or size is refused with the reason. `where` names the file.
 */
export function readNotesAndTags(raw: Record<string, unknown>, where: string): { notes?: string; tags?: string[] } {
  const out: { notes?: string; tags?: string[] } = {};
  if (raw.notes !== undefined) {
    if (typeof raw.notes !== 'string') throw new TypeError(`${where}: notes is ${raw.notes === null ? 'null' : Array.isArray(raw.notes) ? 'a list' : `a ${typeof raw.notes}`}, not text`);
    if (raw.notes.length > MAX_NOTES_CHARS) throw new TypeError(`${where}: notes are ${raw.notes.length} characters, more than the ${MAX_NOTES_CHARS} a run keeps`);
    out.notes = raw.notes;
  }
  if (raw.tags !== undefined) {
    if (!Array.isArray(raw.tags)) throw new TypeError(`${where}: tags is ${raw.tags === null ? 'null' : `a ${typeof raw.tags}`}, not a list of words`);
    const tags = raw.tags as unknown[];
    tags.forEach((t, i) => {
      if (typeof t !== 'string') throw new TypeError(`${where}: tag ${i + 1} is ${t === null ? 'null' : `a ${typeof t}`}, not a word`);
      const p = tagProblem(t);
      if (p) throw new TypeError(`${where}: ${p}`);
    });
    if (tags.length > MAX_TAGS) throw new TypeError(`${where}: ${tags.length} tags, more than the ${MAX_TAGS} a run keeps`);
    if (new Set(tags.map((t) => (t as string).toLowerCase())).size !== tags.length) throw new TypeError(`${where}: a tag is listed twice`);
    out.tags = tags as string[];
  }
  return out;
}

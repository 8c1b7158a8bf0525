// The held-out evaluation stored with a base model (training_args.json `evaluation`, made by the
// pretrain command or the page's pretraining; src/mas/base-eval.ts), as a compact task x difficulty
// grid: skyline and text accuracy per cell, intervals, validity and ood in the cell's tooltip. The
// stored JSON may come from an imported file, so it is read defensively; a base without one says so.
import type { BaseEvalRow, BaseEvaluation } from '../../worker/api';
import { formatDuration } from '../format';

type Read = { kind: 'none' } | { kind: 'error'; message: string } | { kind: 'ok'; ev: BaseEvaluation };

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function isRow(r: unknown): r is BaseEvalRow {
  const o = r as Partial<BaseEvalRow> | null;
  return !!o && typeof o === 'object' && typeof o.task === 'string' && isNum(o.difficulty) && (o.method === 'skyline' || o.method === 'text') &&
    (o.split === 'heldout' || o.split === 'ood') && isNum(o.episodes) && (o.accuracy === null || isNum(o.accuracy));
}

/** The `evaluation` of a model's provenance, checked. */
export function readBaseEvaluation(provenance: Record<string, unknown> | undefined): Read {
  const v = provenance?.evaluation as Record<string, unknown> | undefined;
  if (v === undefined || v === null) return { kind: 'none' };
  if (typeof v !== 'object') return { kind: 'error', message: 'the stored evaluation cannot be read' };
  if (typeof v.error === 'string') return { kind: 'error', message: v.error };
  if (!Array.isArray(v.rows) || !Array.isArray(v.tasks) || !Array.isArray(v.difficulties)) return { kind: 'error', message: 'the stored evaluation cannot be read' };
  return { kind: 'ok', ev: { ...(v as unknown as BaseEvaluation), rows: (v.rows as unknown[]).filter(isRow) } };
}

const acc = (r: BaseEvalRow | undefined) => (r && r.error === undefined && isNum(r.accuracy) ? r.accuracy.toFixed(2) : r?.error !== undefined ? 'err' : '—');

function describe(r: BaseEvalRow | undefined, label: string): string {
  if (!r) return `${label}: not evaluated`;
  if (r.error !== undefined) return `${label}: failed (${r.error})`;
  const ci = r.ci95 ? ` [${r.ci95[0].toFixed(3)}, ${r.ci95[1].toFixed(3)}]` : '';
  const valid = isNum(r.validity) ? `, valid ${r.validity.toFixed(2)}` : '';
  const text = r.method === 'text' && r.textBudget !== undefined ? `, budget ${r.textBudget}${isNum(r.messageTokens) ? `, ${r.messageTokens.toFixed(1)} tokens sent` : ''}` : '';
  return `${label}: ${isNum(r.accuracy) ? r.accuracy.toFixed(3) : '—'}${ci}${valid}${text}`;
}

/** One line under a base's configuration when it has no evaluation table: none stored, or the failure. */
export function BaseEvalNote({ provenance }: { provenance: Record<string, unknown> | undefined }) {
  const read = readBaseEvaluation(provenance);
  if (read.kind === 'none') {
    return (
      <div className="muted small" data-testid="model-eval-none">
        {provenance?.cancelled ? 'Not evaluated: its pretraining was stopped early.' : 'No held-out evaluation stored with this base.'}
      </div>
    );
  }
  if (read.kind === 'error') {
    return (
      <div className="small bad" data-testid="model-eval-error">
        Evaluation failed: {read.message}
      </div>
    );
  }
  return null;
}

/** The task x difficulty grid of a stored evaluation (nothing when there is none: see BaseEvalNote). */
export function BaseEvalTable({ provenance }: { provenance: Record<string, unknown> | undefined }) {
  const read = readBaseEvaluation(provenance);
  if (read.kind !== 'ok') return null;
  const ev = read.ev;
  const at = (task: string, d: number, m: 'skyline' | 'text', s: 'heldout' | 'ood') =>
    ev.rows.find((r) => r.task === task && r.difficulty === d && r.method === m && r.split === s);
  const failed = ev.rows.filter((r) => r.error !== undefined).length;
  return (
    <div className="base-eval" data-testid="model-eval">
      <div className="muted small">
        held-out accuracy, <b>skyline</b> · <b>text</b> ({ev.evalSize} episode{ev.evalSize === 1 ? '' : 's'} per cell, {formatDuration(ev.seconds)}
        {ev.device ? ` on ${ev.device}` : ''}){failed ? ` · ${failed} failed` : ''}
        {ev.incomplete ? ` · incomplete: ${ev.incomplete}` : ''}
      </div>
      <table className="eval-grid">
        <thead>
          <tr>
            <th />
            {ev.difficulties.map((d) => (
              <th key={d}>d{d}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {ev.tasks.map((task) => (
            <tr key={task}>
              <th>{task}</th>
              {ev.difficulties.map((d) => {
                const sky = at(task, d, 'skyline', 'heldout');
                const text = at(task, d, 'text', 'heldout');
                const ood = at(task, d, 'skyline', 'ood');
                const chance = sky?.chance ?? text?.chance;
                const title = [
                  `${task} d${d}${sky ? `, ${sky.episodes} episodes` : ''}${isNum(chance) ? `, chance ${chance.toFixed(3)}` : ''}`,
                  describe(sky, 'skyline heldout'), describe(ood, 'skyline ood'), describe(text, 'text heldout'),
                ].join('\n');
                const shade = sky && isNum(sky.accuracy) ? `rgba(59, 91, 219, ${(0.05 + 0.3 * sky.accuracy).toFixed(2)})` : undefined;
                return (
                  <td key={d} title={title} style={shade ? { background: shade } : undefined} data-testid={`eval-${task}-d${d}`}>
                    {acc(sky)} · {acc(text)}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

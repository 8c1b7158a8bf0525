// Compare: what a report measured about the messages themselves (issue 19): the linear probes of the
// received K/V (the best held-out probe per target, where it sits, and its chance) and the bits sweep
// (accuracy with the received K/V quantised to k bits per float). The same content as the CLI's
// formatProbes and formatBits (src/mas/measures.ts), from the report's plain data.
import type { BitsReport, ProbeReport } from '../../mas/measure-types';
import type { ExperimentReport } from '../../worker/api';
import { formatPercent } from '../format';

type Cell = ProbeReport['cells'][number];

/** The cell with the highest held-out accuracy for target i (the first on ties, as formatProbes). */
function bestCell(p: ProbeReport, i: number): Cell | undefined {
  let best = p.cells[0];
  for (const c of p.cells) if (c.accuracy[i] > best.accuracy[i]) best = c;
  return best;
}

const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : (v * 100).toFixed(1));

/** Probe reports with the same targets and chances (the same seed's episodes) share one table. */
function probeGroups(probes: ProbeReport[]): ProbeReport[][] {
  const groups = new Map<string, ProbeReport[]>();
  for (const p of probes) {
    const key = JSON.stringify(p.targets);
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  return [...groups.values()];
}

function ProbesTable({ group, first, agentName }: { group: ProbeReport[]; first: boolean; agentName: (id: string) => string }) {
  const targets = group[0].targets;
  const seeds = [...new Set(group.map((p) => p.seed))];
  // the edge is named in each cell only where a report has several
  const manyEdges = group.some((p) => p.edges.length > 1);
  const edges = [...new Set(group.flatMap((p) => p.edges.map((e) => `${agentName(e.sender)} → ${agentName(e.receiver)}`)))];
  return (
    <div className="table-wrap">
      <table className="table dense measures" data-testid="compare-probes">
        {first && (
          <caption className="small">
            Linear probes from the received K/V ({edges.join(', ')}) to the senders’ content: per method and seed, the best held-out
            accuracy (%) over every {manyEdges ? 'edge, ' : ''}latent position (p), layer (L) and K or V per target, and where it is;
            below, each target’s chance (the training rows’ most frequent class) and 1 / classes.
          </caption>
        )}
        <thead>
          <tr>
            <th>{seeds.length === 1 ? `seed ${seeds[0]}` : 'method'}</th>
            {targets.map((t) => (
              <th key={t.name}>{t.name}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {group.map((p) => (
            <tr key={`${p.method}-${p.seed}`}>
              <td>
                {p.method}
                {seeds.length > 1 && <span className="muted"> · {p.seed}</span>}
              </td>
              {targets.map((t, i) => {
                const c = bestCell(p, i);
                return (
                  <td key={t.name} className="num">
                    <b>{pct(c?.accuracy[i])}</b>
                    {c && (
                      <span className="at muted">
                        {manyEdges ? `${agentName(c.sender)}→${agentName(c.receiver)} ` : ''}p{c.position} L{c.layer} {c.kind.toUpperCase()}
                      </span>
                    )}
                  </td>
                );
              })}
            </tr>
          ))}
          <tr className="chance">
            <td className="muted">chance (majority)</td>
            {targets.map((t) => (
              <td key={t.name} className="num muted">
                {pct(t.chance)}
              </td>
            ))}
          </tr>
          <tr className="chance">
            <td className="muted">1 / classes</td>
            {targets.map((t) => (
              <td key={t.name} className="num muted">
                {pct(t.uniform)}
              </td>
            ))}
          </tr>
        </tbody>
      </table>
    </div>
  );
}

function BitsTable({ bits, chance }: { bits: BitsReport[]; chance: number | undefined }) {
  const widths = [...new Set(bits.flatMap((b) => b.levels.map((l) => l.bits)))].sort((a, b) => b - a);
  const tolerances = [...new Set(bits.map((b) => b.tolerance))];
  const seeds = [...new Set(bits.map((b) => b.seed))];
  const tol = tolerances.length === 1 ? `${(tolerances[0] * 100).toFixed(1)} points` : 'its tolerance';
  return (
    <div className="table-wrap">
      <table className="table dense measures" data-testid="compare-bits">
        <caption className="small">
          Held-out accuracy (%) with the received K/V quantised to k bits per float. The smallest k is the fewest bits whose accuracy, and
          that of every wider width, stays within {tol} of float32; on a method at chance{chance !== undefined ? ` (${formatPercent(chance)} here)` : ''} accuracy
          does not depend on the message, so its smallest k means nothing.
        </caption>
        <thead>
          <tr>
            <th rowSpan={2}>{seeds.length === 1 ? `seed ${seeds[0]}` : 'method'}</th>
            <th rowSpan={2}>float32</th>
            <th colSpan={widths.length} className="group">k bits per float</th>
            <th rowSpan={2}>smallest k</th>
            <th rowSpan={2} title="k × the floats of one received position (every layer's K and V); the per-vector scales at 2 to 8 bits below">
              bits / latent position
            </th>
            <th rowSpan={2} title="log2 of the vocabulary: the bits one text token can carry">
              log2 V bits / text token
            </th>
          </tr>
          <tr>
            {widths.map((k) => (
              <th key={k}>{k}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {bits.map((b) => {
            const scale = b.levels.find((l) => l.bits === b.smallest)?.scaleBitsPerPosition ?? 0;
            return (
              <tr key={`${b.method}-${b.seed}`}>
                <td>
                  {b.method}
                  {seeds.length > 1 && <span className="muted"> · {b.seed}</span>}
                </td>
                <td className="num">
                  <b>{pct(b.unquantized)}</b>
                </td>
                {widths.map((k) => (
                  <td key={k} className="num">
                    {pct(b.levels.find((l) => l.bits === k)?.accuracy)}
                  </td>
                ))}
                <td className="num">{b.smallest ?? 'none'}</td>
                <td className="num">
                  {b.bitsPerPosition === null ? '—' : b.bitsPerPosition.toLocaleString('en-US')}
                  {b.bitsPerPosition !== null && scale > 0 && <span className="at muted">+{scale.toLocaleString('en-US')} scale</span>}
                </td>
                <td className="num">{b.textBitsPerToken.toFixed(2)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** Agent id to name from the report's topology (args are free-form: a report without one shows ids). */
function agentNames(args: Record<string, unknown>): Map<string, string> {
  const names = new Map<string, string>();
  const topo = args.topology as { agents?: unknown } | undefined;
  if (topo && Array.isArray(topo.agents)) {
    for (const a of topo.agents as { id?: unknown; name?: unknown }[]) if (typeof a?.id === 'string' && typeof a.name === 'string') names.set(a.id, a.name);
  }
  return names;
}

/** The probe and bits tables of a report that has them (npm run experiment -- --probe --bits); nothing otherwise. */
export function CompareMeasures({ report }: { report: ExperimentReport }) {
  const probes = Array.isArray(report.probes) ? report.probes : [];
  const bits = Array.isArray(report.bits) ? report.bits : [];
  if (!probes.length && !bits.length) return null;
  const names = agentNames(report.args);
  const agentName = (id: string) => names.get(id) ?? id;
  return (
    <div className="compare-measures" data-testid="compare-measures">
      <h3 className="compare-title">What the messages carry</h3>
      {probeGroups(probes).map((g, i) => (
        <ProbesTable key={i} group={g} first={i === 0} agentName={agentName} />
      ))}
      {bits.length > 0 && <BitsTable bits={bits} chance={report.chance?.heldout} />}
    </div>
  );
}

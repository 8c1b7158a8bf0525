// What the library does not keep of an imported run export, in words (issue 21 item 8: a re-imported
// run was smaller than its zip with no word why). The page's export (src/ui/export.ts) puts beside
// the run bundle the CSV tables, the chart and heatmap figures and the TensorBoard event files: all
// are made from the record, so the library stores the record (and the bundle's adapters and base)
// and makes them again on the next export. Pure: no DOM, no storage.

/** The export's folders that are derived from the record, with what they hold. */
export const DERIVED_FOLDERS: Readonly<Record<string, string>> = {
  results: 'CSV tables',
  charts: 'chart figures',
  heatmaps: 'heatmap figures',
  tensorboard: 'TensorBoard event files',
};

export interface LeftOut {
  /** The derived folders present, in DERIVED_FOLDERS order. */
  folders: string[];
  files: number;
  bytes: number;
}

/** The derived files among a run export's paths (results/record.json, the record, is not one) (at its root, or under one top folder when a folder was imported). */
export function leftOutOfRun(paths: ReadonlyMap<string, Uint8Array>): LeftOut {
  const found = new Set<string>();
  let files = 0;
  let bytes = 0;
  for (const [p, b] of paths) {
    const parts = p.replace(/\\/g, '/').split('/');
    // the record itself is what the import reads
    if (parts[parts.length - 1] === 'record.json') continue;
    const dir = parts.length > 1 && parts[0] in DERIVED_FOLDERS ? parts[0] : parts.length > 2 && parts[1] in DERIVED_FOLDERS ? parts[1] : null;
    if (!dir) continue;
    found.add(dir);
    files++;
    bytes += b.length;
  }
  return { folders: Object.keys(DERIVED_FOLDERS).filter((d) => found.has(d)), files, bytes };
}

const kb = (n: number) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KB`);

/** "Not kept: results/ (CSV tables), charts/ (chart figures): 6 files, 16.1 KB; the run's export makes them again from its record." ('' when none) */
export function leftOutWords(l: LeftOut): string {
  if (!l.folders.length) return '';
  const list = l.folders.map((d) => `${d}/ (${DERIVED_FOLDERS[d]})`).join(', ');
  return `Not kept: ${list}: ${l.files} file${l.files === 1 ? '' : 's'}, ${kb(l.bytes)}; they are made from the record, and the run's export makes them again.`;
}

// "From the Hub": a model's repository id (and revision) on the Hugging Face Hub fetched into the
// library. The download is src/storage/hub.ts's (config.json checked before any weight, Range
// resumes, size and sha256 checks); this form adds the page's storage quota (navigator.storage
// .estimate) before the weights, keeps the bytes of an interrupted try for the next one, and hands
// the checked files to the library's import as one folder named after the model.
// The Hub's address is DEFAULT_HUB_HOST unless the page's URL has ?hub=ADDRESS or the field is edited.
import { proxy, transfer } from 'comlink';
import { useRef, useState } from 'react';
import { downloadFromHub, formatHubProgress, memoryHubStore, type HubProgress, type HubStore } from '../../storage/hub';
import { hubHost, parseHubRef } from '../../storage/hub-host';
import { errorText, getEngine } from '../engine';
import { formatBytes } from '../format';
import { useLibrary } from '../stores/library';

/** ?hub= as given (a bad address is named when Fetch is pressed), else the default. */
function initialHost(): string {
  return new URLSearchParams(window.location.search).get('hub')?.trim() || hubHost();
}

/** Throws in words when the site may not store `bytes` more (the estimate is all a page can know). */
async function ensureQuota(bytes: number): Promise<void> {
  const est = await navigator.storage?.estimate?.().catch(() => null);
  if (!est || est.quota === undefined || est.usage === undefined) return;
  const free = Math.max(0, est.quota - est.usage);
  if (bytes > free) {
    throw new Error(`not enough storage: this model needs ${formatBytes(bytes)} but this site may store only ${formatBytes(free)} more (${formatBytes(est.usage)} used of ${formatBytes(est.quota)}); delete entries from the library or free disk space; no weights were fetched`);
  }
}

export function HubImport({ disabled }: { disabled?: boolean }) {
  const [repo, setRepo] = useState('');
  const [revision, setRevision] = useState('main');
  const [host, setHost] = useState(initialHost);
  const [running, setRunning] = useState(false);
  // the import into the library cannot be stopped: Stop is offered while bytes are fetched only
  const [importing, setImporting] = useState(false);
  const [progress, setProgress] = useState<HubProgress | null>(null);
  const [stage, setStage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const abort = useRef<AbortController | null>(null);
  // the bytes of an interrupted download, kept for the next try of the same model
  const kept = useRef<{ key: string; store: HubStore & { files: Map<string, Uint8Array> } } | null>(null);

  const start = async () => {
    setError(null);
    setProgress(null);
    let ref;
    let base;
    try {
      ref = parseHubRef(`${repo.trim()}@${revision.trim() || 'main'}`);
      base = hubHost(host);
    } catch (e) {
      setError(errorText(e));
      return;
    }
    const key = `${base}|${ref.repo}|${ref.revision}`;
    if (kept.current?.key !== key) kept.current = { key, store: memoryHubStore() };
    const { store } = kept.current;
    const ctl = new AbortController();
    abort.current = ctl;
    setRunning(true);
    setStage(`asking ${base} for ${ref.repo}@${ref.revision}`);
    let drops = 0;
    try {
      const r = await downloadFromHub({ host: base, ref, store, signal: ctl.signal, ensureSpace: ensureQuota, onProgress: (p) => {
        if (p.note) drops++;
        setStage(null);
        setProgress(p);
      } });
      setImporting(true);
      setStage('storing it in the library');
      const name = ref.repo.split('/')[1] + (ref.revision === 'main' ? '' : `@${ref.revision}`);
      const blobs = r.files.map((f) => ({ name: `${name}/${f}`, bytes: store.files.get(f)! }));
      // the bytes move to the worker: a failed import starts the next try afresh
      kept.current = null;
      const done = await getEngine().importFiles(transfer(blobs, blobs.map((b) => b.bytes.buffer)), undefined, proxy((s: string) => setStage(s)));
      await useLibrary.getState().refresh();
      useLibrary.setState({ notice: `Fetched ${ref.repo}@${ref.revision} (commit ${r.info.commit.slice(0, 12)}) from ${base}${drops ? `, resumed after ${drops} dropped connection${drops > 1 ? 's' : ''}` : ''}: imported base model '${done.name}'.`, error: null });
      setProgress(null);
    } catch (e) {
      setError(ctl.signal.aborted ? 'stopped; the bytes fetched so far are kept, so fetching the same model again resumes there' : errorText(e));
    } finally {
      abort.current = null;
      setImporting(false);
      setRunning(false);
      setStage(null);
    }
  };

  const pct = progress && progress.total > 0 ? Math.round((100 * progress.bytes) / progress.total) : 0;
  return (
    <div className="import-row" data-testid="hub-import">
      <span className="small">From the Hub:</span>
      <input value={repo} onChange={(e) => setRepo(e.target.value)} placeholder="ORG/NAME, e.g. HuggingFaceTB/SmolLM2-135M-Instruct" aria-label="Hub model id" size={34} disabled={running} data-testid="hub-repo"
        onKeyDown={(e) => e.key === 'Enter' && !running && repo.trim() && void start()} />
      <input value={revision} onChange={(e) => setRevision(e.target.value)} aria-label="Hub revision" title="branch, tag or commit" size={8} disabled={running} data-testid="hub-revision" />
      <input value={host} onChange={(e) => setHost(e.target.value)} aria-label="Hub address" title="the Hub's address (?hub= in the page's URL sets it)" size={22} disabled={running} data-testid="hub-host" />
      {running ? (
        <button type="button" className="btn small" disabled={importing} onClick={() => abort.current?.abort()} data-testid="hub-stop">Stop</button>
      ) : (
        <button type="button" className="btn small" disabled={disabled || !repo.trim()} onClick={() => void start()} data-testid="hub-fetch">Fetch</button>
      )}
      {running && (
        <span className="import-progress small" data-testid="hub-progress">
          <span className="bar thin" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} aria-label="download progress">
            <span className="fill" style={{ width: `${Math.max(2, pct)}%` }} />
          </span>
          <span className="muted">{stage ?? (progress ? `${progress.file}: ${formatHubProgress(progress)}` : '')}</span>
        </span>
      )}
      {progress?.note && running && <span className="muted small" data-testid="hub-note">{progress.note}</span>}
      {error && (
        <span className="alert compact" role="alert" data-testid="hub-error">
          {error}
        </span>
      )}
    </div>
  );
}

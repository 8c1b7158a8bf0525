// The library: base models, adapters and stored runs in IndexedDB (through the worker), import and
// export, pretraining a base, and the storage estimate.
import { proxy, transfer } from 'comlink';
import { create } from 'zustand';
import type { AdapterEntry, ModelEntry, PretrainRequest, RunEntry, RunProgress } from '../../worker/api';
import { importable } from '../../storage/import-files';
import { convertGguf } from '../gguf-convert';
import { DivergenceWatch } from '../../model/divergence';
import { download, errorText, getEngine } from '../engine';
import { useApp } from './app';
import { findInterrupted } from './autosave';
import { useRun } from './run';

const fmtMB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;

/** A file's bytes, reporting how many have been read as they arrive. */
async function readWithProgress(f: File, onBytes: (n: number) => void): Promise<Uint8Array> {
  if (typeof f.stream !== 'function') return new Uint8Array(await f.arrayBuffer());
  const out = new Uint8Array(f.size);
  const reader = f.stream().getReader();
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out.set(value, at);
    at += value.length;
    onBytes(at);
  }
  return at === out.length ? out : out.subarray(0, at);
}

export interface PretrainStatus {
  running: boolean;
  progress: RunProgress | null;
  losses: number[];
  error: string | null;
  done: string | null;
}

interface LibraryStore {
  models: ModelEntry[];
  adapters: AdapterEntry[];
  /** Stored runs (training, evaluation, comparisons), newest first. */
  runs: RunEntry[];
  /** A run a closed or reloaded tab left unfinished (offered for reopening once). */
  interrupted: RunEntry | null;
  dismissInterrupted(): void;
  refreshRuns(): Promise<void>;
  removeRun(id: string): Promise<void>;
  /** Downloads a stored run as one zip: the run bundle plus CSV, SVG and PNG of its curves, tables and heatmaps. */
  exportRun(id: string): Promise<void>;
  loaded: boolean;
  notes: string[];
  usage: number | null;
  quota: number | null;
  persisted: boolean | null;
  /** An import under way: what it is doing and how far (0..1). */
  importProgress: { stage: string; fraction: number } | null;
  /** The last import/export/rename/delete failure, in words. */
  error: string | null;
  /** The stored index cannot be read (LibraryIndexError): the panel offers rebuildIndex. */
  indexBroken: boolean;
  rebuildIndex(): Promise<void>;
  notice: string | null;
  busy: string | null;
  pretrain: PretrainStatus;
  refresh(): Promise<void>;
  refreshEstimate(): Promise<void>;
  rename(kind: 'model' | 'adapter', id: string, name: string): Promise<void>;
  remove(kind: 'model' | 'adapter', id: string): Promise<void>;
  exportEntry(kind: 'model' | 'adapter', id: string): Promise<void>;
  importFiles(files: File[]): Promise<void>;
  startPretrain(req: PretrainRequest): Promise<void>;
  cancelPretrain(): Promise<void>;
  dismiss(): void;
}

export const useLibrary = create<LibraryStore>((setState, getState) => {
  const guard = async (label: string, fn: () => Promise<void>) => {
    setState({ busy: label, error: null, notice: null });
    try {
      await fn();
    } catch (e) {
      setState({ error: errorText(e) });
    } finally {
      setState({ busy: null });
      await getState().refresh();
    }
  };
  let checkedInterrupted = false;
  return {
    models: [],
    adapters: [],
    runs: [],
    interrupted: null,
    dismissInterrupted() {
      setState({ interrupted: null });
    },
    async refreshRuns() {
      try {
        const runs = await getEngine().listRuns();
        setState({ runs });
        // a record was written or removed: the storage figure follows it (not only the library's own changes)
        void getState().refreshEstimate();
        if (!checkedInterrupted) {
          checkedInterrupted = true;
          const found = await findInterrupted(runs, useRun.getState().recordId);
          if (found) setState({ interrupted: found, runs: await getEngine().listRuns() });
        }
      } catch (e) {
        setState({ error: `The stored runs could not be read: ${errorText(e)}` });
      }
    },
    removeRun(id) {
      return guard('delete', async () => {
        await getEngine().deleteRun(id);
        if (useRun.getState().viewing?.id === id) useRun.getState().closeView();
        if (getState().interrupted?.id === id) setState({ interrupted: null });
      });
    },
    exportRun(id) {
      return guard('export', async () => {
        const { exportRunZip } = await import('../export');
        const file = await exportRunZip(id, (stage) => setState({ busy: `exporting: ${stage}` }));
        download(file);
        setState({ notice: `Exported ${file.name}.` });
      });
    },
    loaded: false,
    notes: [],
    usage: null,
    quota: null,
    persisted: null,
    importProgress: null,
    error: null,
    indexBroken: false,
    notice: null,
    busy: null,
    pretrain: { running: false, progress: null, losses: [], error: null, done: null },
    async refresh() {
      const engine = getEngine();
      try {
        const [models, adapters, notes] = await Promise.all([engine.listModels(), engine.listAdapters(), engine.libraryNotes()]);
        setState({ models, adapters, notes, loaded: true, indexBroken: false });
        await getState().refreshRuns();
      } catch (e) {
        const broken = (e as Error)?.name === 'LibraryIndexError' || /library index cannot be read/.test(errorText(e));
        setState({ error: `The library could not be read: ${errorText(e)}`, loaded: true, indexBroken: broken });
      }
      await getState().refreshEstimate();
    },
    async refreshEstimate() {
      try {
        const est = await getEngine().storageEstimate();
        setState({ usage: est.usage, quota: est.quota, persisted: est.persisted });
      } catch {
        /* the estimate is informative only */
      }
    },
    rebuildIndex() {
      return guard('rebuild', async () => {
        const r = await getEngine().rebuildLibraryIndex();
        setState({
          indexBroken: false,
          notice: `Rebuilt the library index: ${r.models} base model(s) and ${r.adapters} adapter(s) found` +
            `${r.skipped.length ? `; ${r.skipped.length} unreadable record(s) left as they are` : ''}${r.backup ? '; the old index is kept' : ''}.`,
        });
      });
    },
    rename(kind, id, name) {
      return guard('rename', async () => {
        if (kind === 'model') await getEngine().renameModel(id, name);
        else await getEngine().renameAdapter(id, name);
      });
    },
    remove(kind, id) {
      return guard('delete', async () => {
        if (kind === 'model') await getEngine().deleteModel(id);
        else await getEngine().deleteAdapter(id);
      });
    },
    exportEntry(kind, id) {
      return guard('export', async () => {
        const file = kind === 'model' ? await getEngine().exportModel(id) : await getEngine().exportAdapter(id);
        download(file);
        setState({ notice: `Exported ${file.name}.` });
      });
    },
    importFiles(files) {
      return guard('import', async () => {
        const picked = importable(files);
        if (!picked.length) {
          throw new Error(
            `none of these files can be imported (${files.slice(0, 5).map((f) => f.name).join(', ')}${files.length > 5 ? ', …' : ''}): ` +
              'give config.json with model.safetensors (or its shards and model.safetensors.index.json) and tokenizer.json, a GGUF file, a PEFT adapter, a zip of them, or an exported run (zip or folder)',
          );
        }
        const total = picked.reduce((n, f) => n + f.size, 0);
        // the quota first: the files themselves must fit (the worker checks the exact stored size again)
        await getState().refreshEstimate();
        const { usage, quota } = getState();
        if (usage !== null && quota !== null && total > quota - usage) {
          throw new Error(`not enough storage: these files are ${fmtMB(total)} but this site may store only ${fmtMB(Math.max(0, quota - usage))} more (${fmtMB(usage)} used of ${fmtMB(quota)}); delete entries from the library or free disk space; nothing was written`);
        }
        try {
          let done = 0;
          const blobs: { name: string; bytes: Uint8Array }[] = [];
          for (const f of picked) {
            blobs.push({ name: f.webkitRelativePath || f.name, bytes: await readWithProgress(f, (n) => setState({ importProgress: { stage: `reading ${f.name}`, fraction: (0.5 * (done + n)) / Math.max(1, total) } })) });
            done += f.size;
          }
          // a GGUF file becomes its Hugging Face files here (src/storage/gguf-import.ts: dequantized
          // to float32, tokenizer and config from its metadata), imported as their zip
          const gguf = blobs.findIndex((b) => /\.gguf$/i.test(b.name));
          if (gguf >= 0) {
            if (blobs.length > 1) throw new Error('import a GGUF file on its own (it holds the whole model)');
            const name = blobs[0].name;
            const stage = (done: number, total: number) => setState({ importProgress: { stage: `converting ${name}: ${done}/${total} tensors dequantized to float32`, fraction: 0.5 } });
            stage(0, 1);
            try {
              blobs[0] = await convertGguf(name, blobs[0].bytes, stage);
            } catch (e) {
              throw new Error(`${name} cannot be imported: ${(e as Error).message}`);
            }
          }
          const model = useApp.getState().state.model;
          const onProgress = (stage: string, fraction: number) => setState({ importProgress: { stage, fraction: 0.5 + 0.5 * fraction } });
          const r = await getEngine().importFiles(transfer(blobs, blobs.map((b) => b.bytes.buffer)), model, proxy(onProgress));
          // the list first, so that the notice never names an entry the list does not show yet
          await getState().refresh();
          setState({ notice: r.kind === 'run' ? `Imported run '${r.name}': it is in the Runs list.${r.note ? ` ${r.note}` : ''}` : `Imported ${r.kind === 'model' ? 'base model' : 'adapter'} '${r.name}'.` });
        } finally {
          setState({ importProgress: null });
        }
      });
    },
    async startPretrain(req) {
      if (getState().pretrain.running) return;
      const losses: number[] = [];
      setState({ pretrain: { running: true, progress: null, losses, error: null, done: null } });
      const watch = new DivergenceWatch();
      const onProgress = (p: RunProgress) => {
        if (Number.isFinite(p.loss) && p.state === 'running') losses.push(p.loss);
        const diverging = p.state === 'running' ? watch.push(p.step, p.loss) : null;
        setState({ pretrain: { ...getState().pretrain, progress: p, losses, ...(diverging ? { error: `Warning: ${diverging}.` } : {}) } });
      };
      try {
        const entry = await getEngine().pretrain(req, proxy(onProgress));
        setState({ pretrain: { ...getState().pretrain, running: false, done: `Stored base model '${entry.name}'.` } });
      } catch (e) {
        setState({ pretrain: { ...getState().pretrain, running: false, error: errorText(e) } });
      }
      await getState().refresh();
    },
    async cancelPretrain() {
      await getEngine().cancelPretrain();
    },
    dismiss() {
      setState({ error: null, notice: null });
    },
  };
});

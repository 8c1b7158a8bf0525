// The library: base models and adapters kept in this browser (IndexedDB), with name, size, date and
// the configuration they came from; rename, delete (confirmed), use/load, export as one zip of
// Hugging Face / PEFT files; import by file picker or drag-and-drop; pretrain a new toy base model;
// storage used and available, and a request for persistent storage.
import { Fragment, useRef, useState, type ReactNode } from 'react';
import { MODEL_PRESETS, countParams, presetConfig } from '../../model/config';
import type { AdapterEntry, ModelEntry } from '../../worker/api';
import { formatBytes, formatDate, formatDuration, formatNum } from '../format';
import { stateOfRunConfig, type AppState } from '../state';
import { isTrainedMethod } from '../../mas/run-types';
import { useApp } from '../stores/app';
import { useCompare } from '../stores/compare';
import { useEnv } from '../stores/env';
import { useLibrary } from '../stores/library';
import { useRun } from '../stores/run';
import { LineChart } from './LineChart';
import { BaseEvalNote, BaseEvalTable, readBaseEvaluation } from './BaseEvalTable';
import { CompareRuns } from './CompareRuns';
import { ConfirmDelete } from './ConfirmDelete';
import { HubImport } from './HubImport';
import { RunsTable } from './RunsTable';

function EditableName({ name, onRename, testId }: { name: string; onRename(n: string): void; testId?: string }) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(name);
  if (!editing) {
    return (
      <span className="name-cell">
        <span className="name" title={name} data-testid={testId}>
          {name}
        </span>
        <button
          type="button"
          className="icon"
          aria-label={`Rename ${name}`}
          title="Rename"
          onClick={() => {
            setDraft(name);
            setEditing(true);
          }}
        >
          ✎
        </button>
      </span>
    );
  }
  const commit = () => {
    setEditing(false);
    if (draft.trim() && draft.trim() !== name) onRename(draft.trim());
  };
  return (
    <input
      className="rename"
      autoFocus
      value={draft}
      maxLength={120}
      aria-label="New name"
      onChange={(e) => setDraft(e.target.value)}
      onBlur={commit}
      onKeyDown={(e) => {
        if (e.key === 'Enter') commit();
        if (e.key === 'Escape') setEditing(false);
      }}
    />
  );
}

/** The page setup that reopens an adapter set: its run's setup, or (an imported adapter without one) the current one made to fit it. */
function setupForAdapters(app: AppState, set: AdapterEntry[]): AppState {
  const first = set[0];
  if (first.runConfig) return { ...stateOfRunConfig(app, first.runConfig), model: first.baseModelId };
  const c = first.config as { r?: number; lora_alpha?: number; target_modules?: string[] };
  const method = isTrainedMethod(app.method) ? app.method : 'diffmas';
  // one adapter with no recorded agent: every agent uses it, as the shared adapter
  const topology = set.length === 1 ? { ...app.topology, agents: app.topology.agents.map((a) => ({ ...a, adapter: 'shared' as const })) } : app.topology;
  return {
    ...app, model: first.baseModelId, method, topology,
    rank: c.r ?? app.rank, alpha: c.lora_alpha ?? app.alpha, targets: (c.target_modules as AppState['targets'] | undefined) ?? app.targets,
  };
}

function modelSummary(m: ModelEntry): string {
  const c = m.config as Record<string, number>;
  const params = (() => {
    try {
      return countParams(c as unknown as Parameters<typeof countParams>[0]);
    } catch {
      return NaN;
    }
  })();
  return `d${c.hidden_size} · ${c.num_hidden_layers} layers · ${c.num_attention_heads}/${c.num_key_value_heads} heads · ${Number.isFinite(params) ? `${(params / 1000).toFixed(0)}k params` : ''}`;
}

function adapterSummary(a: AdapterEntry): string {
  const c = a.config as { r?: number; lora_alpha?: number; target_modules?: string[] };
  const targets = (c.target_modules ?? []).map((t) => t.replace('_proj', '')).join(',');
  const rc = a.runConfig;
  return `r${c.r} α${c.lora_alpha} · ${targets}${rc ? ` · ${rc.task} d${rc.difficulty} · ${rc.method} · ${rc.steps} steps · seed ${rc.seed}` : ''}`;
}

function Pretrain() {
  const lib = useLibrary();
  const envOk = useEnv((s) => s.env?.ok === true);
  const runActive = useRun((s) => s.state === 'running' || s.state === 'paused');
  const [name, setName] = useState('my toy model');
  const [preset, setPreset] = useState('toy');
  const [steps, setSteps] = useState(300);
  const [batch, setBatch] = useState(16);
  const [lr, setLr] = useState(0.003);
  const [seed, setSeed] = useState(1);
  // episodes per task, difficulty and split of the closing evaluation (0: none)
  const [evalSize, setEvalSize] = useState(64);
  const p = lib.pretrain;
  const pr = p.progress;
  const blocked = !envOk ? 'WebGPU is not available' : runActive ? 'a training run is active: reset it first' : null;
  const vocab = 54;
  return (
    <details className="pretrain">
      <summary>Pretrain a new base model</summary>
      <form
        className="pretrain-form"
        onSubmit={(e) => {
          e.preventDefault();
          void lib.startPretrain({ name, preset, steps, batch, lr, seed, evaluation: evalSize > 0 ? { evalSize } : false });
        }}
      >
        <div className="field">
          <label htmlFor="pt-name">Name</label>
          <input id="pt-name" value={name} onChange={(e) => setName(e.target.value)} disabled={p.running} />
        </div>
        <div className="field wide">
          <label htmlFor="pt-preset">Size</label>
          <select id="pt-preset" value={preset} onChange={(e) => setPreset(e.target.value)} disabled={p.running} data-testid="pretrain-preset">
            {Object.keys(MODEL_PRESETS).map((k) => (
              <option key={k} value={k}>
                {k} ({(countParams(presetConfig(k, vocab)) / 1000).toFixed(0)}k params)
              </option>
            ))}
          </select>
        </div>
        <div className="field narrow">
          <label htmlFor="pt-steps">Steps</label>
          <input id="pt-steps" type="number" min={1} value={steps} onChange={(e) => setSteps(Math.max(1, Math.floor(Number(e.target.value) || 1)))} disabled={p.running} data-testid="pretrain-steps" />
        </div>
        <div className="field narrow">
          <label htmlFor="pt-batch">Batch</label>
          <input id="pt-batch" type="number" min={1} value={batch} onChange={(e) => setBatch(Math.max(1, Math.floor(Number(e.target.value) || 1)))} disabled={p.running} data-testid="pretrain-batch" />
        </div>
        <div className="field narrow">
          <label htmlFor="pt-lr">LR</label>
          <input id="pt-lr" type="number" step="any" min={0} value={lr} onChange={(e) => setLr(Number(e.target.value))} disabled={p.running} />
        </div>
        <div className="field narrow">
          <label htmlFor="pt-seed">Seed</label>
          <input id="pt-seed" type="number" min={0} value={seed} onChange={(e) => setSeed(Math.max(0, Math.floor(Number(e.target.value) || 0)))} disabled={p.running} />
        </div>
        <div className="field narrow">
          <label htmlFor="pt-eval" title="Held-out episodes per task, difficulty and split of the evaluation that ends pretraining (skyline and text channel); 0: no evaluation">
            Eval episodes
          </label>
          <input id="pt-eval" type="number" min={0} max={10000} value={evalSize} onChange={(e) => setEvalSize(Math.min(10000, Math.max(0, Math.floor(Number(e.target.value) || 0))))} disabled={p.running} data-testid="pretrain-eval-size" />
        </div>
        <div className="field narrow">
          <span className="label-like">&nbsp;</span>
          {p.running ? (
            <button type="button" className="btn small" onClick={() => void lib.cancelPretrain()} data-testid="pretrain-cancel">
              Stop &amp; keep
            </button>
          ) : (
            <button type="submit" className="btn small primary" disabled={!!blocked || !(lr > 0 && lr < 1)} title={blocked ?? undefined} data-testid="pretrain-start">
              Pretrain
            </button>
          )}
        </div>
      </form>
      {(p.running || pr) && (
        <div className="pretrain-progress" data-testid="pretrain-progress">
          <div className="bar thin" role="progressbar" aria-valuemin={0} aria-valuemax={pr?.totalSteps ?? steps} aria-valuenow={pr?.step ?? 0}>
            <div className="fill" style={{ width: `${pr ? (100 * pr.step) / pr.totalSteps : 0}%` }} />
          </div>
          <span className="small">
            step {pr?.step ?? 0}/{pr?.totalSteps ?? steps} · loss {formatNum(pr?.loss ?? null, 4)} · {pr?.stepsPerSecond ? pr.stepsPerSecond.toFixed(2) : '—'} steps/s · left{' '}
            {pr && pr.stepsPerSecond > 0 && p.running ? formatDuration((pr.totalSteps - pr.step) / pr.stepsPerSecond) : '—'}
            {p.running && pr?.message ? <> · {pr.message}</> : null}
          </span>
          {p.losses.length > 1 && (
            <LineChart height={70} xMax={pr?.totalSteps ?? steps} series={[{ name: 'loss', color: '#3b5bdb', xs: p.losses.map((_, i) => i + 1), ys: p.losses, kind: 'line' }]} />
          )}
        </div>
      )}
      {p.error && (
        <div className="alert compact" role="alert">
          {p.error}
        </div>
      )}
      {p.done && !p.running && (
        <div className="notice compact" role="status" data-testid="pretrain-done">
          {p.done}
        </div>
      )}
    </details>
  );
}

export function LibraryPanel() {
  const lib = useLibrary();
  const app = useApp((s) => s.state);
  const set = useApp((s) => s.set);
  const replace = useApp((s) => s.replace);
  const persist = useEnv((s) => s.persist);
  const runActive = useRun((s) => s.state === 'running' || s.state === 'paused');
  const runBase = useRun((s) => s.config?.modelId ?? null);
  const openAdapters = useRun((s) => s.openAdapters);
  const compareRunning = useCompare((s) => s.running);
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  const [persistNote, setPersistNote] = useState<string | null>(null);
  const setOf = (a: AdapterEntry) => (a.setId ? lib.adapters.filter((x) => x.setId === a.setId) : [a]);
  const reopen = async (a: AdapterEntry) => {
    const group = setOf(a);
    const base = lib.models.find((m) => m.id === a.baseModelId);
    if (!base) {
      useLibrary.setState({ error: `'${a.name}' was made for the base model ${JSON.stringify(a.baseModelId)}, which is not in the library: import that base first (or a base with the same configuration, and import the adapter again for it).` });
      return;
    }
    const next = setupForAdapters(app, group);
    const switched = next.model !== app.model;
    replace(next);
    const name = group.length > 1 ? a.name.replace(/ · [^·]+$/, '') : a.name;
    if (switched) useLibrary.setState({ notice: `Switched the base model to '${base.name}': the adapter set '${name}' was trained on it.`, error: null });
    // (resolves when that run ends: the set waits paused for evaluation, a look or more training)
    await openAdapters(group.map((x) => x.id), name);
  };
  const [dragging, setDragging] = useState(false);
  const names = new Map(lib.models.map((m) => [m.id, m.name]));
  const busy = !!lib.busy;

  const frac = lib.usage !== null && lib.quota ? lib.usage / lib.quota : null;
  let header: ReactNode = null;
  if (lib.error) {
    header = (
      <div className="alert compact" role="alert" data-testid="library-error">
        <span>{lib.error}</span>
        {lib.indexBroken && (
          <button type="button" onClick={() => void lib.rebuildIndex()} disabled={busy} data-testid="library-rebuild">
            Rebuild index
          </button>
        )}
        <button type="button" className="link" onClick={lib.dismiss} aria-label="Dismiss">
          ✕
        </button>
      </div>
    );
  } else if (lib.notice) {
    header = (
      <div className="notice compact" role="status" data-testid="library-notice">
        <span>{lib.notice}</span>
        <button type="button" className="link" onClick={lib.dismiss} aria-label="Dismiss">
          ✕
        </button>
      </div>
    );
  }

  return (
    <section
      className={`panel library${dragging ? ' dragging' : ''}`}
      aria-labelledby="library-title"
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes('Files')) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        const files = [...e.dataTransfer.files];
        if (files.length) void lib.importFiles(files);
      }}
      data-testid="library"
    >
      <div className="library-head">
        <h2 id="library-title">Library</h2>
        <div className="storage-line small" data-testid="storage-line">
          <span>
            {formatBytes(lib.usage)} used of {formatBytes(lib.quota)}
          </span>
          {frac !== null && (
            <span className="bar tiny-bar" aria-hidden>
              <span className="fill" style={{ width: `${Math.max(1, Math.min(100, frac * 100))}%` }} />
            </span>
          )}
          <span>
            · persistent:{' '}
            {lib.persisted === null ? 'unknown' : lib.persisted ? 'yes' : 'no'}
          </span>
          {lib.persisted === false && (
            <button
              type="button"
              className="link"
              data-testid="keep-data"
              onClick={async () => {
                setPersistNote('asking the browser…');
                const granted = await persist();
                setPersistNote(
                  granted
                    ? 'The browser will keep this site’s data under storage pressure.'
                    : 'The browser declined for now (Chromium grants it to sites you bookmark, install or use often); your data is still stored, only evictable when the disk runs low.',
                );
              }}
              title="Ask the browser not to evict this site's data under storage pressure"
            >
              keep my data
            </button>
          )}
        </div>
        {persistNote && (
          <div className="small persist-note" role="status" data-testid="persist-note">
            {persistNote}
          </div>
        )}
      </div>
      <div className="import-row">
        <button type="button" className="btn small" disabled={busy} onClick={() => fileInput.current?.click()} data-testid="import-button">
          Import files…
        </button>
        <button type="button" className="btn small" disabled={busy} onClick={() => folderInput.current?.click()} data-testid="import-folder-button" title="A model folder as Hugging Face saves it (config.json, model.safetensors or shards, tokenizer.json), or a run bundle folder (run.json at its top) that experiment --export-run wrote">
          Import folder…
        </button>
        <span className="muted small">or drop a zip / loose files here (a Hugging Face Llama, Qwen2 or Qwen3 checkpoint, a llama.cpp GGUF file of one, a PEFT adapter for the selected base model, or an exported run)</span>
        <input
          ref={folderInput}
          type="file"
          hidden
          data-testid="import-folder-input"
          {...({ webkitdirectory: '', directory: '' } as Record<string, string>)}
          onChange={(e) => {
            const files = [...(e.target.files ?? [])];
            e.target.value = '';
            if (files.length) void lib.importFiles(files);
          }}
        />
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          accept=".zip,.json,.safetensors,.gguf,application/zip,application/json"
          data-testid="import-input"
          onChange={(e) => {
            const files = [...(e.target.files ?? [])];
            e.target.value = '';
            if (files.length) void lib.importFiles(files);
          }}
        />
        {lib.busy && !lib.importProgress && <span className="muted small">{lib.busy}…</span>}
        {lib.importProgress && (
          <span className="import-progress small" data-testid="import-progress">
            <span className="bar thin" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(lib.importProgress.fraction * 100)} aria-label="import progress">
              <span className="fill" style={{ width: `${Math.max(2, Math.round(lib.importProgress.fraction * 100))}%` }} />
            </span>
            <span className="muted">{lib.importProgress.stage}…</span>
          </span>
        )}
      </div>
      <HubImport disabled={busy} />
      {header}
      {lib.notes.map((n, i) => (
        <div key={i} className="alert compact" role="alert" data-testid="library-note">
          {n}
        </div>
      ))}
      <h3>Base models</h3>
      <table className="table lib" data-testid="models-table">
        <thead>
          <tr>
            <th>name</th>
            <th>configuration</th>
            <th>size</th>
            <th>date</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {!lib.loaded && (
            <tr>
              <td colSpan={5} className="muted">
                Reading the library…
              </td>
            </tr>
          )}
          {lib.models.map((m) => {
            // a stored evaluation gets its own row below, spanning the table (it is wider than the configuration column)
            const evaluated = readBaseEvaluation(m.provenance).kind === 'ok';
            const cls = [m.id === app.model ? 'current' : '', evaluated ? 'has-eval' : ''].filter(Boolean).join(' ') || undefined;
            return (
              <Fragment key={m.id}>
                <tr className={cls} data-testid={`model-row-${m.id}`}>
                  <td>
                    <EditableName name={m.name} onRename={(n) => void lib.rename('model', m.id, n)} />
                    {m.builtin && <span className="tag">shipped</span>}
                    {m.tokenizer === false && (
                      <span className="tag warn" data-testid="no-tokenizer" title="Imported without tokenizer.json: it runs on token ids only (generate --ids), not on the tasks; import it again with its tokenizer to train or compare on it">
                        no tokenizer
                      </span>
                    )}
                    {m.id === app.model && <span className="tag ok-tag">in use</span>}
                  </td>
                  <td className="small" title={m.provenance ? JSON.stringify({ ...m.provenance, evaluation: undefined }, null, 1) : undefined}>
                    {modelSummary(m)}
                    {typeof m.provenance?.finalLoss === 'number' && <span className="muted"> · loss {formatNum(m.provenance.finalLoss as number, 3)}</span>}
                    <BaseEvalNote provenance={m.provenance} />
                  </td>
                  <td className="num">{formatBytes(m.size)}</td>
                  <td className="small date">{formatDate(m.createdAt)}</td>
                  <td className="actions">
                    <div className="actions-wrap">
                    <button type="button" className="btn tiny" disabled={runActive || m.id === app.model} onClick={() => set({ model: m.id })} title="Use as the base model of the next run">
                      Use
                    </button>
                    <button type="button" className="btn tiny" disabled={busy} onClick={() => void lib.exportEntry('model', m.id)} title="Download config.json, model.safetensors and tokenizer.json as one zip">
                      Export
                    </button>
                    <ConfirmDelete
                      what={m.name}
                      disabled={m.builtin || busy || m.id === runBase}
                      title={m.builtin ? 'Shipped with the page: it cannot be deleted' : undefined}
                      onConfirm={() => void lib.remove('model', m.id)}
                    />
                    </div>
                  </td>
                </tr>
                {evaluated && (
                  <tr className={[m.id === app.model ? 'current' : '', 'eval-row'].filter(Boolean).join(' ')} data-testid={`model-eval-row-${m.id}`}>
                    <td colSpan={5}>
                      <BaseEvalTable provenance={m.provenance} />
                    </td>
                  </tr>
                )}
              </Fragment>
            );
          })}
        </tbody>
      </table>
      <h3>Adapters</h3>
      <div className="table-wrap">
      <table className="table lib" data-testid="adapters-table">
        <thead>
          <tr>
            <th>name</th>
            <th>agent · base · from</th>
            <th>size</th>
            <th>date</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {lib.loaded && lib.adapters.length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                No adapters yet: train a DiffMAS run and press “Save adapters”, or import a PEFT adapter.
              </td>
            </tr>
          )}
          {lib.adapters.map((a) => (
            <tr key={a.id} data-testid="adapter-row">
              <td>
                <EditableName name={a.name} onRename={(n) => void lib.rename('adapter', a.id, n)} testId="adapter-name" />
              </td>
              <td className="small">
                <b title={`agent id ${a.agent}`}>{a.runConfig?.topology.agents.find((x) => x.id === a.agent)?.name ?? a.agent}</b> · {names.get(a.baseModelId) ?? <span className="bad">{a.baseModelId} (missing)</span>}
                <div className="muted">{adapterSummary(a)}</div>
              </td>
              <td className="num">{formatBytes(a.size)}</td>
              <td className="small date">{formatDate(a.createdAt)}</td>
              <td className="actions">
                <div className="actions-wrap">
                  <button
                    type="button"
                    className="btn tiny primary"
                    disabled={runActive || compareRunning}
                    data-testid="open-adapter"
                    title={`Build this setup with ${setOf(a).length > 1 ? `the ${setOf(a).length} adapters saved with this one` : 'this adapter'} loaded: evaluate it on every split, look at its messages, or train it further`}
                    onClick={() => void reopen(a)}
                  >
                    Open
                  </button>
                  <button
                    type="button"
                    className="btn tiny"
                    disabled={!a.runConfig || runActive}
                    title={a.runConfig ? 'Load only the setup this adapter was trained with (task, topology, method, model, seed…)' : 'This adapter has no recorded run setup'}
                    onClick={() => a.runConfig && replace(stateOfRunConfig(app, a.runConfig))}
                  >
                    Setup
                  </button>
                  <button type="button" className="btn tiny" disabled={busy} onClick={() => void lib.exportEntry('adapter', a.id)} data-testid="export-adapter" title="Download adapter_config.json and adapter_model.safetensors (PEFT) as one zip">
                    Export
                  </button>
                  <ConfirmDelete what={a.name} disabled={busy} onConfirm={() => void lib.remove('adapter', a.id)} />
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      <h3>Runs</h3>
      <RunsTable />
      <CompareRuns />
      <Pretrain />
    </section>
  );
}

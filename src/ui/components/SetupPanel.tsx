// The run's setup, left column: task and difficulty, method, base model, LoRA, optimisation, seed,
// and the less common knobs under "More". Locked while a run is active (reset to change it). While a
// stored run is open it shows that run's configuration, read-only, with one button to copy it into a
// new run.
import { useMemo } from 'react';
import { PROJS, type Proj } from '../../model/config';
import { MAX_DIFFICULTY, MIN_DIFFICULTY, TASK_NAMES, makeTask, type TaskName } from '../../tasks/tasks';
import { METHODS, type MethodName } from '../../worker/api';
import { curriculumApplies, defaultTopology, quizApplies, slotOffsetApplies, type RenderingChoice } from '../state';
import { isTrainedMethod } from '../../mas/run-types';
import { useApp } from '../stores/app';
import { useLibrary } from '../stores/library';
import { useRun } from '../stores/run';
import { copyBlocker, copyShownIntoNewRun, useShownSetup } from '../stores/shown-run';
import { Field, NumberField, SelectField } from './fields';

export const METHOD_INFO: Record<MethodName, { label: string; about: string }> = {
  single: {
    label: 'single agent',
    about: 'The final agent alone, with only its own part and no messages: no information about the answer reaches it. Its best is a guess (chance); a base that was never trained to guess may score 0, answering out of format (see validity).',
  },
  skyline: { label: 'skyline (one context)', about: 'One context holding every part, untrained: what no message is needed for.' },
  'single-trained': {
    label: 'single agent (trained)',
    about: 'The single agent with its own LoRA trained on the answer (the same rank, steps, learning rate and batch as DiffMAS): what training alone buys without any message, e.g. learning to guess the most frequent answer.',
  },
  'skyline-trained': {
    label: 'skyline (one context, trained)',
    about: 'The skyline with its own LoRA trained on the answer, as DiffMAS is trained: the ceiling a trained team is measured against.',
  },
  text: { label: 'text MAS', about: 'Senders decode a text message (greedy, token budget) that is added to the receiver’s prompt.' },
  'text-trained': {
    label: 'text MAS (trained)',
    about: 'Every agent’s LoRA trained through the text messages, as DiffMAS is trained: each sender writes exactly the token budget of tokens (greedy, never a newline), and the gradient reaches it straight-through a softmax at the text temperature.',
  },
  latentmas: { label: 'LatentMAS (latent only)', about: 'Training-free: the receiver attends over the K/V of the sender’s latent steps.' },
  'latentmas-full': { label: 'LatentMAS (full trace)', about: 'Training-free, K/V of the sender’s prompt and latent steps: context sharing.' },
  diffmas: { label: 'DiffMAS (latent only)', about: 'LoRA adapters trained end to end through the K/V of the latent steps.' },
  'diffmas-full': { label: 'DiffMAS (full trace)', about: 'DiffMAS over the sender’s prompt and latent steps.' },
  'diffmas-detached': { label: 'DiffMAS (detached)', about: 'DiffMAS with the gradient stopped at the trace: only the reader trains.' },
  c2c: {
    label: 'Cache-to-Cache (C2C)',
    about: 'The sender’s full cache (prompt and latent steps) fused into the receiver’s by a learned projector and gate per layer, trained on the answer with the same steps, learning rate and batch; both bases frozen, no LoRA. At step 0 it answers as LatentMAS (full trace).',
  },
};

const SHORT: Record<Proj, string> = {
  q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gate', up_proj: 'up', down_proj: 'down',
};

export function SetupPanel({ locked }: { locked: boolean }) {
  const shown = useShownSetup();
  const s = shown.state;
  const viewing = shown.record;
  const set = useApp((x) => x.set);
  const models = useLibrary((x) => x.models);
  const libraryLoaded = useLibrary((x) => x.loaded);
  const runState = useRun((x) => x.state);
  const trainedSteps = useRun((x) => x.history.steps.length);
  const task = useMemo(() => makeTask(s.task, s.difficulty), [s.task, s.difficulty]);
  const trained = isTrainedMethod(s.method);
  // c2c trains its fuser, not LoRA adapters (src/mas/c2c-fuser.ts)
  const lora = trained && s.method !== 'c2c';
  const off = locked || viewing !== null;
  const copyWhy = copyBlocker(runState);

  const modelOptions = models.map((m) => {
    const c = m.config as { hidden_size?: number; num_hidden_layers?: number; model_type?: string; vocab_size?: number };
    const kind = c.model_type && c.model_type !== 'llama' ? `${c.model_type} ` : '';
    return { value: m.id, label: `${m.name} — ${kind}d${c.hidden_size ?? '?'}×${c.num_hidden_layers ?? '?'}${c.vocab_size && c.vocab_size > 256 ? `, vocab ${c.vocab_size}` : ''}` };
  });
  if (!models.some((m) => m.id === s.model)) modelOptions.unshift({ value: s.model, label: `${s.model} (${libraryLoaded ? 'not in the library' : 'loading…'})` });

  // chat only for a model whose tokenizer_config.json has a chat template (ModelEntry.chatTemplate, set when it was stored)
  const hasTemplate = models.find((m) => m.id === s.model)?.chatTemplate === true;
  const renderingOptions: { value: RenderingChoice; label: string }[] = [
    { value: 'auto', label: 'auto (char for the toys, word for a tokenizer.json)' },
    { value: 'char', label: 'char (compact)' },
    { value: 'word', label: 'word (plain words)' },
  ];
  if (hasTemplate) renderingOptions.push({ value: 'chat', label: 'chat (the model’s chat template)' });
  else if (s.rendering === 'chat') renderingOptions.push({ value: 'chat', label: 'chat: this model has no chat template' });

  const setTask = (t: TaskName) => set({ task: t, topology: defaultTopology(t, s.difficulty) });
  const toggleTarget = (p: Proj) => {
    const has = s.targets.includes(p);
    if (has && s.targets.length === 1) return;
    set({ targets: PROJS.filter((x) => (x === p ? !has : s.targets.includes(x))) });
  };

  return (
    <section className="panel setup" aria-labelledby="setup-title">
      <h2 id="setup-title">Setup</h2>
      {viewing && (
        <div className="notice compact stored-setup" role="status" data-testid="setup-stored">
          <span>
            Showing the stored run <b>{viewing.name}</b>: its own setup, read-only.
          </span>
          <button
            type="button"
            className="btn tiny primary"
            disabled={copyWhy !== null}
            title={copyWhy ? `Cannot copy now: ${copyWhy}` : 'Put this setup in the page (and the link), editable, for a new run; the stored run closes'}
            onClick={copyShownIntoNewRun}
            data-testid="copy-into-new-run"
          >
            Copy into a new run
          </button>
        </div>
      )}
      {locked && !viewing && (
        <p className="muted small lock-note">
          {runState === 'paused' ? 'Paused' : 'Training'}: reset the run to change the setup.
        </p>
      )}
      {!off && (runState === 'done' || runState === 'stopped') && trainedSteps > 0 && (
        <p className="muted small lock-note">Changing the setup clears this run: save its adapters first to keep them.</p>
      )}
      <h3>Task</h3>
      <div className="row2 task-row">
        <SelectField
          label="Task"
          value={s.task}
          testId="task"
          disabled={off}
          options={TASK_NAMES.map((t) => ({ value: t, label: t }))}
          onChange={setTask}
        />
        <SelectField
          label="Difficulty"
          value={String(s.difficulty)}
          testId="difficulty"
          disabled={off}
          hint="1 (easiest) to 5"
          options={Array.from({ length: MAX_DIFFICULTY - MIN_DIFFICULTY + 1 }, (_, i) => String(MIN_DIFFICULTY + i)).map((d) => ({ value: d, label: d }))}
          onChange={(d) => set({ difficulty: Number(d) })}
        />
      </div>
      <p className="muted small task-about" title={task.description}>
        {task.description} Chance {(task.chance * 100).toFixed(task.chance < 0.01 ? 2 : 0)}%.
      </p>

      <h3>Method</h3>
      <SelectField
        label="Communication"
        value={s.method}
        testId="method"
        disabled={off}
        options={METHODS.map((m) => ({ value: m, label: METHOD_INFO[m].label, title: METHOD_INFO[m].about }))}
        onChange={(m) => set({ method: m })}
      />
      <p className="muted small">{METHOD_INFO[s.method].about}</p>
      <SelectField label="Base model" value={s.model} testId="model" disabled={off} options={modelOptions} onChange={(m) => set({ model: m })} />
      <SelectField
        label="Rendering"
        value={s.rendering}
        testId="rendering"
        disabled={off}
        hint="How the episodes become text: the toys' compact format (char), plain words (word), or the words through the model's own chat template (chat, for an instruction-tuned model)"
        options={renderingOptions}
        onChange={(v) => set({ rendering: v })}
      />

      <h3 title={lora ? undefined : s.method === 'c2c' ? 'c2c trains its fuser, not adapters' : 'This method trains no adapters'}>LoRA{lora ? '' : ' · unused'}</h3>
      <div className="row2">
        <SelectField
          label="Rank r"
          value={String(s.rank)}
          disabled={off || !lora}
          testId="rank"
          options={[...new Set([1, 2, 4, 8, 16, 32, s.rank])].sort((a, b) => a - b).map((r) => ({ value: String(r), label: String(r) }))}
          onChange={(v) => set({ rank: Number(v) })}
        />
        <NumberField label="Alpha" value={s.alpha} min={0.01} max={1024} disabled={off || !lora} testId="alpha" onChange={(v) => set({ alpha: v })} />
      </div>
      <div className="field">
        <span className="label-like">Targets</span>
        <div className="chips toggle" role="group" aria-label="LoRA target modules">
          {PROJS.map((p) => (
            <button
              key={p}
              type="button"
              className={s.targets.includes(p) ? 'on' : ''}
              aria-pressed={s.targets.includes(p)}
              disabled={off || !lora}
              title={p}
              onClick={() => toggleTarget(p)}
            >
              {SHORT[p]}
            </button>
          ))}
        </div>
      </div>

      <h3>Training</h3>
      <div className="row2">
        <NumberField label="Learning rate" value={s.lr} min={1e-6} max={1} disabled={off || !trained} testId="lr" onChange={(v) => set({ lr: v })} />
        <NumberField label="Steps" value={s.steps} min={1} max={100000} integer disabled={off || !trained} testId="steps" onChange={(v) => set({ steps: v })} />
      </div>
      <div className="row2">
        <NumberField label="Batch" value={s.batch} min={1} max={256} integer disabled={off} testId="batch" onChange={(v) => set({ batch: v })} />
        <div className="seed-field">
          <NumberField label="Seed" value={s.seed} min={0} max={2 ** 31 - 1} integer disabled={off} testId="seed" onChange={(v) => set({ seed: v })} />
          <button
            type="button"
            className="icon dice"
            disabled={off}
            aria-label="New random seed"
            onClick={() => set({ seed: Math.floor(Math.random() * 100000) })}
            title="A new seed: new data order, new adapter init, new sampling"
          >
            ⚄
          </button>
        </div>
      </div>
      <details className="more">
        <summary>More</summary>
        <SelectField
          label="Latent map"
          value={s.latentMap}
          disabled={off}
          hint="How a latent step's last hidden state is mapped back to an input embedding"
          options={[
            { value: 'ridge', label: 'ridge (W_a)' },
            { value: 'identity', label: 'identity' },
          ]}
          onChange={(v) => set({ latentMap: v })}
        />
        <SelectField
          label="Positions"
          value={s.positions}
          disabled={off}
          hint="RoPE positions of the agents: 'stream' puts each agent after the ones it reads (a receiver continues after every position it reads); 'prefix' starts each agent at its prefix length"
          options={[
            { value: 'stream', label: 'stream (after what it reads)' },
            { value: 'prefix', label: 'prefix (after its prefix)' },
          ]}
          onChange={(v) => set({ positions: v })}
        />
        <div className="row2">
          <NumberField label="Text budget" value={s.textBudget} min={1} max={64} integer disabled={off} hint="Tokens a text message may hold" onChange={(v) => set({ textBudget: v })} />
          <NumberField label="Eval every" value={s.evalEvery} min={0} max={100000} integer disabled={off} testId="eval-every" hint="Held-out evaluation every N steps (0: only at the end)" onChange={(v) => set({ evalEvery: v })} />
        </div>
        <NumberField
          label="Text temperature" value={s.textTemperature} min={0.01} max={100} disabled={off || s.method !== 'text-trained'}
          hint="text-trained: the temperature of the softmax whose gradient stands in for each written token's (straight-through); the tokens themselves stay greedy"
          onChange={(v) => set({ textTemperature: v })}
        />
        <SelectField
          label="LR schedule"
          value={s.lrSchedule}
          disabled={off || !isTrainedMethod(s.method)}
          testId="lr-schedule"
          hint="Trained methods: after the linear warmup, cosine decay to lr/10 at the last step, or lr held constant"
          options={[
            { value: 'cosine', label: 'warmup, then cosine' },
            { value: 'constant', label: 'warmup, then constant' },
          ]}
          onChange={(v) => set({ lrSchedule: v })}
        />
        <Field label="Latent slot offset" hint="diffmas, diffmas-full: a learned vector per latent step of each sender, added to the input it feeds back (zero at the start; trained and saved with its adapter)">
          <input
            type="checkbox" checked={s.latentSlotOffset} disabled={off || !slotOffsetApplies(s)} data-testid="latent-slot-offset"
            aria-label="Latent slot offset" onChange={(e) => set({ latentSlotOffset: e.target.checked })}
          />
        </Field>
        <Field label="Quiz loss" hint="lookup, DiffMAS variants: train on every key of each table from one message (the pretraining quiz); the loss is the mean over all of them, evaluation unchanged">
          <input
            type="checkbox" checked={s.quizLoss} disabled={off || !quizApplies(s)} data-testid="quiz-loss"
            aria-label="Quiz loss" onChange={(e) => set({ quizLoss: e.target.checked })}
          />
        </Field>
        <SelectField
          label="Curriculum"
          value={curriculumApplies(s) ? String(s.curriculumFrom) : '0'}
          disabled={off || !isTrainedMethod(s.method) || s.difficulty === MIN_DIFFICULTY}
          testId="curriculum-from"
          hint="Trained methods: training batches from an easier difficulty first, then each next one up to this run's, the steps split evenly; evaluation at the run's difficulty"
          options={[
            { value: '0', label: 'none' },
            ...Array.from({ length: s.difficulty - MIN_DIFFICULTY }, (_, i) => ({ value: String(MIN_DIFFICULTY + i), label: `from d${MIN_DIFFICULTY + i}` })),
          ]}
          onChange={(v) => set({ curriculumFrom: Number(v) })}
        />
        <NumberField label="Eval episodes" value={s.evalSize} min={1} max={4096} integer disabled={off} testId="eval-size" onChange={(v) => set({ evalSize: v })} />
      </details>
    </section>
  );
}

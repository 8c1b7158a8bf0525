// The topology editor: agents as nodes, messages (K/V traces) as edges, drawn with React Flow
// (@xyflow/react). Drag from a node's right handle to another node to connect; select an edge or an
// agent and press Delete (or use the buttons) to remove it. The selected agent's role, part of the
// input, latent steps and adapter are edited below the graph. Problems (a cycle, no final agent, an
// agent cut off) are listed and drawn in red, and the run refuses to start until they are fixed.
// While a stored run is open it shows that run's agents and messages, read-only (Setup copies them).
import {
  Background, Handle, MarkerType, Position, ReactFlow, ReactFlowProvider, useReactFlow, type Connection, type Edge as FlowEdge,
  type EdgeChange, type Node, type NodeChange, type NodeProps,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { useEffect, useMemo, useState } from 'react';
import {
  AGENT_ID_PATTERN, MAX_AGENTS, MAX_LATENT_STEPS, chain, single, star, twoRound, validateTopology, type Agent, type Topology,
} from '../../mas/topology';
import { makeTask, type Task } from '../../tasks/tasks';
import { methodSpec } from '../../mas/methods';
import type { MethodName } from '../../worker/api';
import { defaultTopology } from '../state';
import { setupVerdict } from '../verdict';
import { useApp } from '../stores/app';
import { useRun } from '../stores/run';
import { useShownSetup } from '../stores/shown-run';

interface AgentData extends Record<string, unknown> {
  agent: Agent;
  roleName: string;
  /** What the agent sends, as its node says it: 'z×4' latent steps under a latent method, nothing otherwise (a text method's message is its text). */
  sends: string;
  final: boolean;
  bad: boolean;
  locked: boolean;
}
type AgentNodeType = Node<AgentData, 'agent'>;

function AgentNode({ data, selected }: NodeProps<AgentNodeType>) {
  const a = data.agent;
  return (
    <div className={`agent-node${data.final ? ' final' : ''}${data.bad ? ' bad' : ''}${selected ? ' selected' : ''}`} data-testid={`agent-node-${a.id}`}>
      <Handle type="target" position={Position.Left} isConnectable={!data.locked} />
      <div className="an-name" title={`id ${a.id}`}>
        {a.name}
        {data.final && <span className="an-final" title="the final agent answers">★</span>}
      </div>
      <div className="an-meta">
        <span className="an-role">{data.roleName}</span>
        {data.sends && <span title="latent steps">{data.sends}</span>}
        <span title="adapter">{a.adapter === 'shared' ? 'shared' : 'own'}</span>
      </div>
      <Handle type="source" position={Position.Right} isConnectable={!data.locked} />
    </div>
  );
}

const nodeTypes = { agent: AgentNode };

function roleName(task: Task, role: Agent['role']): string {
  if (role === 'none') return 'no input';
  return task.roles.find((r) => r.part === role)?.name ?? `part ${role}`;
}

/** Columns by longest path from a source; rows in agents order. Cycles are cut where met. */
function autoLayout(t: Topology): Map<string, { x: number; y: number }> {
  const ids = t.agents.map((a) => a.id);
  const depth = new Map(ids.map((id) => [id, 0]));
  for (let pass = 0; pass < ids.length; pass++) {
    let changed = false;
    for (const [f, to] of t.edges) {
      if (!depth.has(f) || !depth.has(to)) continue;
      const d = depth.get(f)! + 1;
      if (d > depth.get(to)! && d < ids.length) {
        depth.set(to, d);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const cols = new Map<number, string[]>();
  for (const id of ids) cols.set(depth.get(id)!, [...(cols.get(depth.get(id)!) ?? []), id]);
  const maxRows = Math.max(...[...cols.values()].map((c) => c.length), 1);
  const out = new Map<string, { x: number; y: number }>();
  for (const [d, col] of cols) {
    // columns far enough apart that an edge's label fits between two nodes
    col.forEach((id, i) => out.set(id, { x: d * 250, y: (i - (col.length - 1) / 2) * 80 + ((maxRows - 1) / 2) * 80 }));
  }
  return out;
}

function messageLabel(method: MethodName, sender: Agent, textBudget: number): string {
  if (methodSpec(method).channel === 'none') return '';
  if (method === 'text') return `text ≤${textBudget}`;
  if (method === 'text-trained') return `text =${textBudget}`;
  return method.endsWith('-full') ? `prompt+z×${sender.latentSteps}` : `z×${sender.latentSteps}`;
}

function freshId(t: Topology): string {
  for (let k = 1; ; k++) if (!t.agents.some((a) => a.id === `n${k}`)) return `n${k}`;
}

function Graph({ locked: liveLocked }: { locked: boolean }) {
  const shown = useShownSetup();
  const s = shown.state;
  const stored = shown.record !== null;
  const locked = liveLocked || stored;
  const set = useApp((x) => x.set);
  const running = useRun((x) => x.state === 'running') && !stored;
  const t = s.topology;
  const task = useMemo(() => makeTask(s.task, s.difficulty), [s.task, s.difficulty]);
  const problems = useMemo(() => validateTopology(t, { parts: task.roles.length }), [t, task]);
  // the run's own verdict (method and task included), the same one the run bar uses
  const verdict = useMemo(() => setupVerdict(s), [s]);
  const badAgents = useMemo(() => new Set(problems.flatMap((p) => p.agents)), [problems]);
  const cycleAgents = useMemo(() => new Set(problems.filter((p) => p.kind === 'cycle').flatMap((p) => p.agents)), [problems]);
  const [selected, setSelected] = useState<string | null>(null);
  const [selectedEdge, setSelectedEdge] = useState<string | null>(null);
  const [moved, setMoved] = useState<Record<string, { x: number; y: number }>>({});
  const flow = useReactFlow();

  const shape = t.agents.map((a) => a.id).join(',') + '|' + t.edges.map((e) => e.join('>')).join(',');
  const layout = useMemo(() => autoLayout(t), [shape]); // eslint-disable-line react-hooks/exhaustive-deps
  const idSet = t.agents.map((a) => a.id).join(',');
  useEffect(() => {
    setMoved({});
  }, [idSet]);
  // refit whenever the graph's shape changes (a new edge can move a node to another column)
  useEffect(() => {
    const h = setTimeout(() => void flow.fitView({ padding: 0.2, maxZoom: 1.1, duration: 0 }), 30);
    return () => clearTimeout(h);
  }, [shape, flow]);
  useEffect(() => {
    if (selected && !t.agents.some((a) => a.id === selected)) setSelected(null);
    if (selectedEdge && !t.edges.some(([f, to]) => `${f}->${to}` === selectedEdge)) setSelectedEdge(null);
  }, [t, selected, selectedEdge]);

  const setTopology = (next: Topology) => set({ topology: next });

  const nodes: AgentNodeType[] = t.agents.map((a) => ({
    id: a.id,
    type: 'agent',
    position: moved[a.id] ?? layout.get(a.id) ?? { x: 0, y: 0 },
    selected: a.id === selected,
    deletable: !locked,
    draggable: true,
    data: { agent: a, roleName: roleName(task, a.role), sends: methodSpec(s.method).channel === 'latent' ? `z×${a.latentSteps}` : '', final: a.id === t.final, bad: badAgents.has(a.id), locked },
  }));
  const byId = new Map(t.agents.map((a) => [a.id, a]));
  const edges: FlowEdge[] = t.edges.map(([f, to]) => {
    const id = `${f}->${to}`;
    const bad = cycleAgents.has(f) && cycleAgents.has(to);
    const color = bad ? '#c92a2a' : id === selectedEdge ? '#3b5bdb' : '#7a849c';
    const sender = byId.get(f);
    return {
      id,
      source: f,
      target: to,
      selected: id === selectedEdge,
      deletable: !locked,
      animated: running,
      label: sender ? messageLabel(s.method, sender, s.textBudget) : '',
      labelStyle: { fontSize: 11, fill: '#343a40' },
      labelBgStyle: { fill: '#fff' },
      labelBgPadding: [3, 2] as [number, number],
      style: { stroke: color, strokeWidth: bad || id === selectedEdge ? 2.2 : 1.6 },
      markerEnd: { type: MarkerType.ArrowClosed, color, width: 16, height: 16 },
    };
  });

  const onNodesChange = (changes: NodeChange<AgentNodeType>[]) => {
    const removed: string[] = [];
    for (const c of changes) {
      if (c.type === 'position' && c.position) setMoved((m) => ({ ...m, [c.id]: c.position! }));
      else if (c.type === 'select') {
        if (c.selected) {
          setSelected(c.id);
          setSelectedEdge(null);
        } else setSelected((cur) => (cur === c.id ? null : cur));
      } else if (c.type === 'remove' && !locked) removed.push(c.id);
    }
    if (removed.length) removeAgents(removed);
  };
  const onEdgesChange = (changes: EdgeChange<FlowEdge>[]) => {
    const removed = new Set<string>();
    for (const c of changes) {
      if (c.type === 'select') {
        if (c.selected) {
          setSelectedEdge(c.id);
          setSelected(null);
        } else setSelectedEdge((cur) => (cur === c.id ? null : cur));
      } else if (c.type === 'remove' && !locked) removed.add(c.id);
    }
    if (removed.size) {
      setTopology({ ...t, edges: t.edges.filter(([f, to]) => !removed.has(`${f}->${to}`)) });
      setSelectedEdge((cur) => (cur && removed.has(cur) ? null : cur));
    }
  };
  const onConnect = (c: Connection) => {
    if (locked || !c.source || !c.target) return;
    if (t.edges.some(([f, to]) => f === c.source && to === c.target)) return;
    setTopology({ ...t, edges: [...t.edges, [c.source, c.target]] });
  };
  const removeAgents = (ids: string[]) => {
    const gone = new Set(ids);
    const agents = t.agents.filter((a) => !gone.has(a.id));
    setTopology({ agents, edges: t.edges.filter(([f, to]) => !gone.has(f) && !gone.has(to)), final: gone.has(t.final) ? '' : t.final });
    setSelected(null);
  };
  const addAgent = () => {
    if (t.agents.length >= MAX_AGENTS) return;
    const id = freshId(t);
    setTopology({ ...t, agents: [...t.agents, { id, name: `agent ${id.slice(1)}`, role: 'none', latentSteps: 4, adapter: 'own' }] });
    setSelected(id);
  };
  const preset = (kind: 'default' | 'single' | 'chain' | 'star' | 'two-round') => {
    const n = task.roles.length;
    const roles = task.roles.map((r) => r.part);
    const names = task.roles.map((r) => r.name);
    const next =
      kind === 'default'
        ? defaultTopology(s.task, s.difficulty)
        : kind === 'single'
          ? single(task.finalRole)
          : kind === 'chain'
            ? chain(n, { roles, names })
            : kind === 'star'
              ? star(n, { roles, names })
              : twoRound({ aRole: task.finalRole, bRole: 0 });
    setTopology(next);
    setSelected(null);
  };

  const agent = selected ? t.agents.find((a) => a.id === selected) ?? null : null;
  const updateAgent = (patch: Partial<Agent>) => {
    if (!agent) return;
    setTopology({ ...t, agents: t.agents.map((a) => (a.id === agent.id ? { ...a, ...patch } : a)) });
  };
  const toggleEdge = (to: string) => {
    if (!agent) return;
    const has = t.edges.some(([f, x]) => f === agent.id && x === to);
    setTopology({ ...t, edges: has ? t.edges.filter(([f, x]) => !(f === agent.id && x === to)) : [...t.edges, [agent.id, to]] });
  };

  return (
    <>
      <div className="topo-toolbar">
        <span className="label-like">Presets</span>
        {(['default', 'single', 'chain', 'star', 'two-round'] as const).map((k) => (
          <button
            key={k}
            type="button"
            className="btn small"
            disabled={locked || (k === 'two-round' && task.roles.length !== 2)}
            title={k === 'two-round' && task.roles.length !== 2 ? 'A -> B -> A\u2032 needs a two-part task' : undefined}
            onClick={() => preset(k)}
            data-testid={`preset-${k}`}
          >
            {k === 'default' ? `${s.task} default` : k}
          </button>
        ))}
        <span className="spacer" />
        <button type="button" className="btn small" disabled={locked || t.agents.length >= MAX_AGENTS} onClick={addAgent} data-testid="add-agent">
          + agent
        </button>
        {selectedEdge && !locked && (
          <button
            type="button"
            className="btn small danger"
            onClick={() => {
              setTopology({ ...t, edges: t.edges.filter(([f, to]) => `${f}->${to}` !== selectedEdge) });
              setSelectedEdge(null);
            }}
          >
            remove edge
          </button>
        )}
      </div>
      <div className={`topo-canvas${problems.length ? ' invalid' : ''}`} data-testid="topology-canvas">
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          onNodesChange={onNodesChange}
          onEdgesChange={onEdgesChange}
          onConnect={onConnect}
          onPaneClick={() => {
            setSelected(null);
            setSelectedEdge(null);
          }}
          nodesConnectable={!locked}
          deleteKeyCode={locked ? null : ['Delete', 'Backspace']}
          fitView
          fitViewOptions={{ padding: 0.2, maxZoom: 1.1 }}
          minZoom={0.3}
          maxZoom={2}
          proOptions={{ hideAttribution: true }}
        >
          <Background gap={16} size={1} color="#e3e7ef" />
        </ReactFlow>
      </div>
      <div className="topo-hint muted small">
        {stored ? 'the stored run’s agents and messages, read-only: select an agent to see its settings' : 'drag from a node’s right dot to another node to send it messages · select + Delete removes'}
      </div>
      <div className="topo-status" data-testid="topology-status">
        {problems.length === 0 && !verdict.reason ? (
          <span className="ok small">
            ✓ valid: {t.agents.length} agent{t.agents.length === 1 ? '' : 's'}, {t.edges.length} message{t.edges.length === 1 ? '' : 's'}
            {methodSpec(s.method).channel === 'none' && <span className="muted"> (the {s.method} method ignores the edges)</span>}
          </span>
        ) : problems.length === 0 ? (
          <span className="bad small" role="alert" data-testid="setup-verdict">
            ✗ cannot run: {verdict.reason}
          </span>
        ) : (
          <ul className="problems" role="alert" data-testid="topology-problems">
            {problems.map((p, i) => (
              <li key={i}>{p.message}</li>
            ))}
          </ul>
        )}
      </div>
      {agent ? (
        <AgentForm
          key={agent.id}
          agent={agent}
          topology={t}
          task={task}
          locked={locked}
          onChange={updateAgent}
          onFinal={() => setTopology({ ...t, final: agent.id })}
          onToggleEdge={toggleEdge}
          onDelete={() => removeAgents([agent.id])}
        />
      ) : (
        <p className="muted small agent-form-empty">Select an agent to edit its name, role, latent steps and adapter.</p>
      )}
    </>
  );
}

function AgentForm({
  agent, topology, task, locked, onChange, onFinal, onToggleEdge, onDelete,
}: {
  agent: Agent;
  topology: Topology;
  task: Task;
  locked: boolean;
  onChange(p: Partial<Agent>): void;
  onFinal(): void;
  onToggleEdge(to: string): void;
  onDelete(): void;
}) {
  const [name, setName] = useState(agent.name);
  const [steps, setSteps] = useState(String(agent.latentSteps));
  // the form follows the agent when it changes elsewhere (a link opened in this tab, the graph)
  useEffect(() => setName(agent.name), [agent.name]);
  useEffect(() => setSteps(String(agent.latentSteps)), [agent.latentSteps]);
  const others = topology.agents.filter((a) => a.id !== agent.id);
  const stepsWhole = /^\d+$/.test(steps);
  const stepsBad = !stepsWhole || Number(steps) > MAX_LATENT_STEPS;
  return (
    <div className="agent-form" data-testid="agent-form" aria-label={`Agent ${agent.name}`}>
      <div className="field">
        <label htmlFor="agent-name">Name</label>
        <input
          id="agent-name"
          value={name}
          disabled={locked}
          maxLength={40}
          onChange={(e) => setName(e.target.value)}
          onBlur={() => name.trim() && name !== agent.name && onChange({ name: name.trim() })}
          onKeyDown={(e) => e.key === 'Enter' && name.trim() && onChange({ name: name.trim() })}
        />
      </div>
      <div className="field">
        <label htmlFor="agent-role">Holds</label>
        <select
          id="agent-role"
          value={String(agent.role)}
          disabled={locked}
          onChange={(e) => onChange({ role: e.target.value === 'none' ? 'none' : Number(e.target.value) })}
        >
          {task.roles.map((r) => (
            <option key={r.part} value={String(r.part)} title={r.description}>
              part {r.part}: {r.name}
            </option>
          ))}
          {agent.role !== 'none' && !task.roles.some((r) => r.part === agent.role) && (
            <option value={String(agent.role)}>part {agent.role} (not in this task)</option>
          )}
          <option value="none">nothing</option>
        </select>
      </div>
      <div className="field narrow">
        <label htmlFor="agent-steps">Latent steps</label>
        <input
          id="agent-steps"
          type="number"
          min={0}
          max={MAX_LATENT_STEPS}
          value={steps}
          disabled={locked}
          aria-invalid={stepsBad || undefined}
          data-testid="agent-steps"
          onChange={(e) => {
            setSteps(e.target.value);
            // any whole number goes to the graph (the node shows it, the verdict names the limit and blocks the run)
            if (/^\d+$/.test(e.target.value) && Number(e.target.value) <= 100000) onChange({ latentSteps: Number(e.target.value) });
          }}
        />
        {stepsBad && <span className="field-error" data-testid="agent-steps-error">{stepsWhole ? `at most ${MAX_LATENT_STEPS}` : 'a whole number 0..' + MAX_LATENT_STEPS}</span>}
      </div>
      <div className="field narrow">
        <label htmlFor="agent-adapter">Adapter</label>
        <select id="agent-adapter" value={agent.adapter} disabled={locked} onChange={(e) => onChange({ adapter: e.target.value as Agent['adapter'] })}>
          <option value="own">own</option>
          <option value="shared">shared</option>
        </select>
      </div>
      <div className="field narrow">
        <span className="label-like">Answers</span>
        <label className="check">
          <input type="radio" name="final-agent" checked={topology.final === agent.id} disabled={locked} onChange={onFinal} /> final
        </label>
      </div>
      <div className="field grow">
        <span className="label-like">Sends to</span>
        <div className="chips toggle">
          {others.length === 0 && <span className="muted small">no other agents</span>}
          {others.map((o) => {
            const on = topology.edges.some(([f, to]) => f === agent.id && to === o.id);
            return (
              <button key={o.id} type="button" className={on ? 'on' : ''} aria-pressed={on} disabled={locked} onClick={() => onToggleEdge(o.id)}>
                {o.name}
              </button>
            );
          })}
        </div>
      </div>
      <div className="field narrow">
        <span className="label-like">&nbsp;</span>
        <button type="button" className="btn small danger" disabled={locked} onClick={onDelete} data-testid="delete-agent">
          delete
        </button>
      </div>
      {!AGENT_ID_PATTERN.test(agent.id) && <p className="bad small">This agent's id is not valid.</p>}
    </div>
  );
}

export function TopologyEditor({ locked }: { locked: boolean }) {
  const stored = useRun((x) => x.viewing);
  return (
    <section className="panel topology" aria-labelledby="topology-title">
      <div className="topo-head">
        <h2 id="topology-title">Agents and messages</h2>
        {stored && (
          <span className="tag" data-testid="topology-stored" title={`The agents and messages of the stored run ${stored.name}`}>
            stored run · read-only
          </span>
        )}
      </div>
      <ReactFlowProvider>
        <Graph locked={locked} />
      </ReactFlowProvider>
    </section>
  );
}

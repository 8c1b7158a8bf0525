// Multi-agent topologies: a directed acyclic graph of agents with one final agent that answers.
//
// An agent holds one part of the episode (role = index into episode.parts) or nothing ('none'),
// runs `latentSteps` latent steps after its prompt, and trains either its own LoRA adapter or the
// one shared by every 'shared' agent. An edge [from, to] hands from's trace (its K/V cache) to `to`;
// a receiver's prefix is the concatenation of its predecessors' traces in predecessors() order,
// which is the order of the agents array (stable, and what the topology editor shows).
//
// URL form (serializeTopology / parseTopology), sections separated by ';':
//   v1;<agents>;<edges>;<final>
//   agents  comma-separated id:role:steps:adapter:name   role = part index or n (none),
//           adapter = o (own) or s (shared), name = encodeURIComponent(name)
//   edges   comma-separated from-to (may be empty)
//   e.g.    v1;t:0:4:o:table,q:1:0:o:query;t-q;q
//
// Pure TypeScript: no DOM, no Node API.

import type { Task } from '../tasks/tasks';

export const MAX_LATENT_STEPS = 64;
export const MAX_AGENTS = 32;
/** Ids stay URL- and label-friendly: letters, digits, underscore; 1..16 characters. */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9_]{1,16}$/;

export type AgentRole = number | 'none';
export type AdapterMode = 'own' | 'shared';

export interface Agent {
  id: string;
  name: string;
  /** which episode part the agent holds (index into episode.parts), or 'none' */
  role: AgentRole;
  /** latent steps after its prompt, 0..64 */
  latentSteps: number;
  adapter: AdapterMode;
}

export type Edge = [from: string, to: string];

export interface Topology {
  agents: Agent[];
  edges: Edge[];
  /** id of the agent that answers */
  final: string;
}

export type TopologyProblemKind =
  | 'no-agents'
  | 'too-many-agents'
  | 'bad-id'
  | 'duplicate-id'
  | 'bad-role'
  | 'bad-latent-steps'
  | 'bad-adapter'
  | 'unknown-agent-in-edge'
  | 'duplicate-edge'
  | 'cycle'
  | 'no-final'
  | 'final-has-outgoing'
  | 'cut-off';

export interface TopologyProblem {
  kind: TopologyProblemKind;
  /** a sentence the UI shows */
  message: string;
  /** the agents concerned (ids) */
  agents: string[];
}

export interface ValidateOptions {
  /** the number of parts of the task's episodes: roles must be below it */
  parts?: number;
}

function label(t: Topology, id: string): string {
  const a = t.agents.find((x) => x.id === id);
  return a && a.name && a.name !== id ? `${a.name} (${id})` : id;
}

/** Strongly connected components with a cycle (size > 1 or a self-loop), Tarjan's algorithm. */
function cyclicComponents(ids: string[], succ: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of succ.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      const selfLoop = comp.length === 1 && (succ.get(v) ?? []).includes(v);
      if (comp.length > 1 || selfLoop) out.push(comp);
    }
  };
  for (const v of ids) if (!index.has(v)) visit(v);
  return out;
}

/** One concrete cycle inside a strongly connected component, as a path that returns to its start. */
function cycleIn(comp: string[], succ: Map<string, string[]>, order: Map<string, number>): string[] {
  const inComp = new Set(comp);
  const start = comp.slice().sort((a, b) => order.get(a)! - order.get(b)!)[0];
  // BFS from start back to start inside the component.
  const prev = new Map<string, string>();
  const queue = [start];
  const seen = new Set<string>();
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of succ.get(v) ?? []) {
      if (!inComp.has(w)) continue;
      if (w === start) {
        const path = [v];
        let x = v;
        while (x !== start) {
          x = prev.get(x)!;
          path.push(x);
        }
        return path.reverse();
      }
      if (!seen.has(w)) {
        seen.add(w);
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return comp;
}

/** Every problem of a topology (empty when valid), each with a message for the UI. */
export function validateTopology(t: Topology, opts: ValidateOptions = {}): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  const add = (kind: TopologyProblemKind, message: string, agents: string[] = []) =>
    problems.push({ kind, message, agents });
  const agents = Array.isArray(t?.agents) ? t.agents : [];
  const edges = Array.isArray(t?.edges) ? t.edges : [];
  if (agents.length === 0) {
    add('no-agents', 'The topology has no agents.');
    return problems;
  }
  if (agents.length > MAX_AGENTS) {
    add('too-many-agents', `The topology has ${agents.length} agents; at most ${MAX_AGENTS} are supported.`);
  }

  const ids: string[] = [];
  const seen = new Set<string>();
  for (const [i, a] of agents.entries()) {
    if (a === null || typeof a !== 'object') {
      add('bad-id', `Agent #${i + 1} is not an agent object.`);
      continue;
    }
    const id = typeof a.id === 'string' ? a.id : '';
    if (!AGENT_ID_PATTERN.test(id)) {
      add('bad-id', `Agent #${i + 1} has id ${JSON.stringify(a.id)}: ids are 1-16 letters, digits or underscores.`, [id]);
    }
    if (seen.has(id)) add('duplicate-id', `Two agents share the id ${JSON.stringify(id)}.`, [id]);
    else {
      seen.add(id);
      ids.push(id);
    }
    const who = label(t, id);
    if (a.role !== 'none') {
      const parts = opts.parts;
      if (!Number.isInteger(a.role) || (a.role as number) < 0) {
        add('bad-role', `Agent ${who} has role ${JSON.stringify(a.role)}: a role is a part index (0, 1, ...) or 'none'.`, [id]);
      } else if (parts !== undefined && (a.role as number) >= parts) {
        add('bad-role', `Agent ${who} holds part ${a.role}, but the task's episodes have only ${parts} parts (0..${parts - 1}).`, [id]);
      }
    }
    if (!Number.isInteger(a.latentSteps) || a.latentSteps < 0 || a.latentSteps > MAX_LATENT_STEPS) {
      add('bad-latent-steps', `Agent ${who} has ${a.latentSteps} latent steps; the range is 0..${MAX_LATENT_STEPS}.`, [id]);
    }
    if (a.adapter !== 'own' && a.adapter !== 'shared') {
      add('bad-adapter', `Agent ${who} has adapter ${JSON.stringify(a.adapter)}; expected 'own' or 'shared'.`, [id]);
    }
  }

  const known = new Set(ids);
  const succ = new Map<string, string[]>(ids.map((id) => [id, []]));
  const pred = new Map<string, string[]>(ids.map((id) => [id, []]));
  const edgeSeen = new Set<string>();
  for (const e of edges) {
    const [from, to] = Array.isArray(e) ? e : [undefined, undefined];
    const missing = [from, to].filter((x) => typeof x !== 'string' || !known.has(x));
    if (missing.length) {
      add(
        'unknown-agent-in-edge',
        `The edge ${String(from)} -> ${String(to)} names ${missing.map((x) => JSON.stringify(x)).join(' and ')}, which is not an agent.`,
        [from, to].filter((x): x is string => typeof x === 'string' && known.has(x)),
      );
      continue;
    }
    const k = `${from}\u0000${to}`;
    if (edgeSeen.has(k)) {
      add('duplicate-edge', `The edge ${label(t, from!)} -> ${label(t, to!)} appears twice.`, [from!, to!]);
      continue;
    }
    edgeSeen.add(k);
    succ.get(from!)!.push(to!);
    pred.get(to!)!.push(from!);
  }

  const order = new Map(ids.map((id, i) => [id, i]));
  for (const comp of cyclicComponents(ids, succ)) {
    const cyc = cycleIn(comp, succ, order);
    const names = cyc.map((id) => label(t, id));
    const msg =
      cyc.length === 1
        ? `Agent ${names[0]} sends to itself: a cycle.`
        : `Cycle: ${[...names, names[0]].join(' -> ')}` +
          (comp.length > cyc.length ? ` (agents in the loop: ${comp.map((id) => label(t, id)).join(', ')})` : '') +
          '.';
    add('cycle', msg, comp.slice().sort((a, b) => order.get(a)! - order.get(b)!));
  }

  const final = t?.final;
  if (typeof final !== 'string' || final === '') {
    add('no-final', 'No final agent is chosen: one agent must answer.');
  } else if (!known.has(final)) {
    add('no-final', `The final agent ${JSON.stringify(final)} is not among the agents.`, []);
  } else {
    const out = succ.get(final)!;
    if (out.length) {
      add(
        'final-has-outgoing',
        `The final agent ${label(t, final)} sends to ${out.map((id) => label(t, id)).join(', ')}; the final agent must only receive.`,
        [final, ...out],
      );
    }
    // Everything must reach the final agent: walk edges backwards from it.
    const reach = new Set([final]);
    const stack = [final];
    while (stack.length) {
      for (const p of pred.get(stack.pop()!)!) {
        if (!reach.has(p)) {
          reach.add(p);
          stack.push(p);
        }
      }
    }
    const cut = ids.filter((id) => !reach.has(id));
    for (const id of cut) {
      add('cut-off', `Agent ${label(t, id)} has no path to the final agent ${label(t, final)}: its work would be lost.`, [id]);
    }
  }
  return problems;
}

/** Throws an Error listing every problem when the topology is invalid. */
export function assertValidTopology(t: Topology, opts: ValidateOptions = {}): void {
  const problems = validateTopology(t, opts);
  if (problems.length) {
    throw new Error(`invalid topology:\n${problems.map((p) => `- ${p.message}`).join('\n')}`);
  }
}

/** Agent ids in an order where every sender precedes its receivers; ties keep the agents order. */
export function topologicalOrder(t: Topology): string[] {
  const ids = t.agents.map((a) => a.id);
  const pos = new Map(ids.map((id, i) => [id, i]));
  const indeg = new Map(ids.map((id) => [id, 0]));
  const succ = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [from, to] of t.edges) {
    if (!pos.has(from) || !pos.has(to)) throw new Error(`topologicalOrder: edge ${from} -> ${to} names an unknown agent`);
    succ.get(from)!.push(to);
    indeg.set(to, indeg.get(to)! + 1);
  }
  const ready = ids.filter((id) => indeg.get(id) === 0);
  const out: string[] = [];
  while (ready.length) {
    // smallest agents-array index first: a stable order
    let best = 0;
    for (let i = 1; i < ready.length; i++) if (pos.get(ready[i])! < pos.get(ready[best])!) best = i;
    const v = ready.splice(best, 1)[0];
    out.push(v);
    for (const w of succ.get(v)!) {
      indeg.set(w, indeg.get(w)! - 1);
      if (indeg.get(w) === 0) ready.push(w);
    }
  }
  if (out.length !== ids.length) {
    const stuck = ids.filter((id) => !out.includes(id));
    throw new Error(`topologicalOrder: the topology has a cycle through ${stuck.join(', ')}`);
  }
  return out;
}

/** The senders of `id`, in agents-array order (duplicate edges counted once). */
export function predecessors(t: Topology, id: string): string[] {
  const from = new Set(t.edges.filter(([, to]) => to === id).map(([f]) => f));
  return t.agents.map((a) => a.id).filter((x) => from.has(x));
}

/** The receivers of `id`, in agents-array order. */
export function successors(t: Topology, id: string): string[] {
  const to = new Set(t.edges.filter(([f]) => f === id).map(([, x]) => x));
  return t.agents.map((a) => a.id).filter((x) => to.has(x));
}

export function agentById(t: Topology, id: string): Agent {
  const a = t.agents.find((x) => x.id === id);
  if (!a) throw new Error(`no agent with id ${JSON.stringify(id)}`);
  return a;
}

// ---------------------------------------------------------------- presets

export const DEFAULT_LATENT_STEPS = 4;

export interface PresetOptions {
  /** latent steps of every non-final agent (the final agent gets 0); default 4 */
  latentSteps?: number;
  adapter?: AdapterMode;
}

function agent(id: string, name: string, role: AgentRole, latentSteps: number, adapter: AdapterMode): Agent {
  return { id, name, role, latentSteps, adapter };
}

/** One agent answering alone (the single-agent baseline). */
export function single(role: AgentRole = 0, opts: PresetOptions = {}): Topology {
  return { agents: [agent('a', 'solver', role, 0, opts.adapter ?? 'own')], edges: [], final: 'a' };
}

const CHAIN3_NAMES = ['planner', 'critic', 'solver'];

/**
 * n agents in a line, 0 -> 1 -> ... -> n-1 (final). Agent i holds part i unless roles says
 * otherwise. n = 3 names them planner, critic, solver.
 */
export function chain(n: number, opts: PresetOptions & { roles?: AgentRole[]; names?: string[] } = {}): Topology {
  if (!Number.isInteger(n) || n < 1 || n > MAX_AGENTS) throw new Error(`chain: n must be in 1..${MAX_AGENTS}, got ${n}`);
  const steps = opts.latentSteps ?? DEFAULT_LATENT_STEPS;
  const agents: Agent[] = [];
  for (let i = 0; i < n; i++) {
    const name = opts.names?.[i] ?? (n === 3 ? CHAIN3_NAMES[i] : `agent${i + 1}`);
    agents.push(agent(`a${i}`, name, opts.roles?.[i] ?? i, i === n - 1 ? 0 : steps, opts.adapter ?? 'own'));
  }
  const edges: Edge[] = [];
  for (let i = 0; i + 1 < n; i++) edges.push([`a${i}`, `a${i + 1}`]);
  return { agents, edges, final: `a${n - 1}` };
}

/** n-1 agents (holding parts 0..n-2) all sending to one aggregator (holding part n-1, final). */
export function star(n: number, opts: PresetOptions & { roles?: AgentRole[]; names?: string[] } = {}): Topology {
  if (!Number.isInteger(n) || n < 1 || n > MAX_AGENTS) throw new Error(`star: n must be in 1..${MAX_AGENTS}, got ${n}`);
  const steps = opts.latentSteps ?? DEFAULT_LATENT_STEPS;
  const agents: Agent[] = [];
  for (let i = 0; i < n; i++) {
    const name = opts.names?.[i] ?? (i === n - 1 ? 'aggregator' : `sender${i + 1}`);
    agents.push(agent(`a${i}`, name, opts.roles?.[i] ?? i, i === n - 1 ? 0 : steps, opts.adapter ?? 'own'));
  }
  const edges: Edge[] = [];
  for (let i = 0; i + 1 < n; i++) edges.push([`a${i}`, `a${n - 1}`]);
  return { agents, edges, final: `a${n - 1}` };
}

/**
 * A -> B -> A' (final): A asks, B (holding the other part) replies, A' is a second instance of A's
 * role that answers. Defaults fit a two-part task whose final role is part 1 (lookup: A holds the
 * query, B the table).
 */
export function twoRound(opts: PresetOptions & { aRole?: AgentRole; bRole?: AgentRole } = {}): Topology {
  const steps = opts.latentSteps ?? DEFAULT_LATENT_STEPS;
  const ad = opts.adapter ?? 'own';
  const aRole = opts.aRole ?? 1;
  const bRole = opts.bRole ?? 0;
  return {
    agents: [agent('a', 'A', aRole, steps, ad), agent('b', 'B', bRole, steps, ad), agent('a2', "A'", aRole, 0, ad)],
    edges: [
      ['a', 'b'],
      ['b', 'a2'],
    ],
    final: 'a2',
  };
}

/** The minimum topology a task needs: one agent per role, wired as the task's flow (chain or star). */
export function presetForTask(task: Pick<Task, 'roles' | 'flow'>, opts: PresetOptions = {}): Topology {
  const n = task.roles.length;
  const cfg = { ...opts, roles: task.roles.map((r) => r.part), names: task.roles.map((r) => r.name) };
  return task.flow === 'chain' ? chain(n, cfg) : star(n, cfg);
}

// ---------------------------------------------------------------- URL form

const TOPOLOGY_VERSION = 'v1';

/** The compact URL-hash form (see the header). Throws on a topology that cannot be written. */
export function serializeTopology(t: Topology): string {
  const agents = t.agents.map((a) => {
    if (!AGENT_ID_PATTERN.test(a.id)) throw new Error(`serializeTopology: agent id ${JSON.stringify(a.id)} is not 1-16 letters, digits or underscores`);
    const role = a.role === 'none' ? 'n' : String(a.role);
    const adapter = a.adapter === 'shared' ? 's' : 'o';
    return `${a.id}:${role}:${a.latentSteps}:${adapter}:${encodeURIComponent(a.name)}`;
  });
  const edges = t.edges.map(([f, to]) => `${f}-${to}`);
  return [TOPOLOGY_VERSION, agents.join(','), edges.join(','), t.final].join(';');
}

/**
 * Parses serializeTopology's form. Refuses malformed text with a message naming the faulty piece;
 * unless validate is false, also refuses a well-formed but invalid graph (assertValidTopology).
 */
export function parseTopology(s: string, opts: { validate?: boolean } = {}): Topology {
  const fail = (why: string): never => {
    throw new Error(`cannot read topology ${JSON.stringify(s.length > 80 ? s.slice(0, 77) + '...' : s)}: ${why}`);
  };
  if (typeof s !== 'string') throw new Error(`cannot read topology: expected a string, got ${typeof s}`);
  const sections = s.trim().split(';');
  if (sections[0] !== TOPOLOGY_VERSION) {
    fail(`it must start with '${TOPOLOGY_VERSION};' (got ${JSON.stringify(sections[0])})`);
  }
  if (sections.length !== 4) {
    fail(`expected 4 sections 'v1;agents;edges;final' separated by ';', got ${sections.length}`);
  }
  const [, agentsText, edgesText, final] = sections;
  if (agentsText === '') fail('the agents section is empty');
  const agents: Agent[] = agentsText.split(',').map((item, i) => {
    const f = item.split(':');
    if (f.length !== 5) fail(`agent #${i + 1} ${JSON.stringify(item)} has ${f.length} fields, expected 5 (id:role:steps:adapter:name)`);
    const [id, roleText, stepsText, adapterText, nameText] = f;
    if (!AGENT_ID_PATTERN.test(id)) fail(`agent #${i + 1} has id ${JSON.stringify(id)}: ids are 1-16 letters, digits or underscores`);
    let role: AgentRole = 'none';
    if (roleText !== 'n') {
      if (!/^\d{1,3}$/.test(roleText)) fail(`agent ${id} has role ${JSON.stringify(roleText)}: expected a part index or 'n'`);
      role = Number(roleText);
    }
    if (!/^\d{1,3}$/.test(stepsText)) fail(`agent ${id} has latent steps ${JSON.stringify(stepsText)}: expected a whole number`);
    const latentSteps = Number(stepsText);
    if (adapterText !== 'o' && adapterText !== 's') fail(`agent ${id} has adapter ${JSON.stringify(adapterText)}: expected 'o' (own) or 's' (shared)`);
    let name = '';
    try {
      name = decodeURIComponent(nameText);
    } catch {
      fail(`agent ${id} has a badly escaped name ${JSON.stringify(nameText)}`);
    }
    return { id, name: name || id, role, latentSteps, adapter: adapterText === 's' ? 'shared' : 'own' };
  });
  const edges: Edge[] =
    edgesText === ''
      ? []
      : edgesText.split(',').map((item) => {
          const m = /^([A-Za-z0-9_]{1,16})-([A-Za-z0-9_]{1,16})$/.exec(item);
          if (!m) fail(`edge ${JSON.stringify(item)} is not 'from-to'`);
          return [m![1], m![2]] as Edge;
        });
  if (!AGENT_ID_PATTERN.test(final)) fail(`the final agent ${JSON.stringify(final)} is not a valid id`);
  const t: Topology = { agents, edges, final };
  if (opts.validate ?? true) {
    const problems = validateTopology(t);
    if (problems.length) fail(problems.map((p) => p.message).join(' '));
  }
  return t;
}

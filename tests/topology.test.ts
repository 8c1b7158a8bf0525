import { describe, expect, it } from 'vitest';
import {
  assertValidTopology,
  chain,
  parseTopology,
  predecessors,
  presetForTask,
  serializeTopology,
  single,
  star,
  successors,
  topologicalOrder,
  twoRound,
  validateTopology,
  type Agent,
  type Topology,
  type TopologyProblemKind,
} from '../src/mas/topology';
import { TASK_NAMES, makeTask } from '../src/tasks/tasks';

const ag = (id: string, role: Agent['role'] = 0, extra: Partial<Agent> = {}): Agent => ({
  id,
  name: id.toUpperCase(),
  role,
  latentSteps: 2,
  adapter: 'own',
  ...extra,
});

function kinds(t: Topology, parts?: number): TopologyProblemKind[] {
  return validateTopology(t, { parts }).map((p) => p.kind);
}

describe('presets', () => {
  const presets: [string, Topology][] = [
    ['single', single()],
    ['chain(1)', chain(1)],
    ['chain(2)', chain(2)],
    ['chain(3)', chain(3)],
    ['chain(6)', chain(6)],
    ['star(2)', star(2)],
    ['star(3)', star(3)],
    ['star(5)', star(5)],
    ['twoRound', twoRound()],
  ];
  for (const [name, t] of presets) {
    it(`${name} is valid`, () => {
      expect(validateTopology(t)).toEqual([]);
      expect(() => assertValidTopology(t)).not.toThrow();
      expect(topologicalOrder(t).at(-1)).toBe(t.final);
      expect(t.agents.find((a) => a.id === t.final)!.latentSteps).toBe(0);
    });
  }

  it('chain(3) is planner -> critic -> solver', () => {
    const t = chain(3);
    expect(t.agents.map((a) => a.name)).toEqual(['planner', 'critic', 'solver']);
    expect(topologicalOrder(t)).toEqual(['a0', 'a1', 'a2']);
    expect(predecessors(t, 'a2')).toEqual(['a1']);
  });

  it('star(4) sends three holders to one aggregator', () => {
    const t = star(4, { latentSteps: 8, adapter: 'shared' });
    expect(predecessors(t, t.final)).toEqual(['a0', 'a1', 'a2']);
    expect(t.agents.map((a) => a.role)).toEqual([0, 1, 2, 3]);
    expect(t.agents.slice(0, 3).every((a) => a.latentSteps === 8 && a.adapter === 'shared')).toBe(true);
  });

  it("twoRound is A -> B -> A' with A' in A's role", () => {
    const t = twoRound();
    expect(topologicalOrder(t)).toEqual(['a', 'b', 'a2']);
    const [a, b, a2] = t.agents;
    expect(a2.role).toBe(a.role);
    expect(b.role).not.toBe(a.role);
    expect(t.final).toBe('a2');
  });

  it('presetForTask gives each task its minimum topology', () => {
    for (const name of TASK_NAMES) {
      const task = makeTask(name, 2);
      const t = presetForTask(task);
      expect(validateTopology(t, { parts: task.roles.length })).toEqual([]);
      expect(t.agents.length).toBe(task.roles.length);
      expect(t.agents.map((a) => a.role).sort()).toEqual(task.roles.map((r) => r.part).sort());
      expect(t.agents.find((a) => a.id === t.final)!.role).toBe(task.finalRole);
      expect(t.agents.map((a) => a.name)).toEqual(task.roles.map((r) => r.name));
    }
    const relay = presetForTask(makeTask('relay', 1));
    expect(relay.edges).toEqual([
      ['a0', 'a1'],
      ['a1', 'a2'],
    ]);
    const arith = presetForTask(makeTask('arith', 1));
    expect(predecessors(arith, arith.final)).toEqual(['a0', 'a1']);
  });

  it('preset sizes are checked', () => {
    expect(() => chain(0)).toThrow(/n must be/);
    expect(() => star(100)).toThrow(/n must be/);
  });
});

describe('validateTopology', () => {
  it('finds a cycle and names the agents in it', () => {
    const t: Topology = {
      agents: [ag('a'), ag('b'), ag('c'), ag('f')],
      edges: [
        ['a', 'b'],
        ['b', 'c'],
        ['c', 'a'],
        ['c', 'f'],
      ],
      final: 'f',
    };
    const problems = validateTopology(t);
    expect(problems.map((p) => p.kind)).toEqual(['cycle']);
    expect(problems[0].agents).toEqual(['a', 'b', 'c']);
    expect(problems[0].message).toBe('Cycle: A (a) -> B (b) -> C (c) -> A (a).');
    expect(() => topologicalOrder(t)).toThrow(/cycle through a, b, c/);
    expect(() => assertValidTopology(t)).toThrow(/invalid topology:\n- Cycle: A \(a\)/);
  });

  it('finds a self-loop', () => {
    const t: Topology = { agents: [ag('a'), ag('f')], edges: [['a', 'a'], ['a', 'f']], final: 'f' };
    const p = validateTopology(t);
    expect(p.map((x) => x.kind)).toEqual(['cycle']);
    expect(p[0].message).toMatch(/sends to itself/);
  });

  it('finds a missing final agent', () => {
    expect(kinds({ agents: [ag('a')], edges: [], final: '' })).toEqual(['no-final']);
    const p = validateTopology({ agents: [ag('a')], edges: [], final: 'zz' });
    expect(p.map((x) => x.kind)).toEqual(['no-final']);
    expect(p[0].message).toMatch(/"zz" is not among the agents/);
  });

  it('finds a final agent with outgoing edges', () => {
    const t: Topology = { agents: [ag('a'), ag('f')], edges: [['a', 'f'], ['f', 'a']], final: 'f' };
    expect(kinds(t)).toContain('final-has-outgoing');
    const t2: Topology = { agents: [ag('a'), ag('b'), ag('f')], edges: [['a', 'f'], ['f', 'b']], final: 'f' };
    expect(kinds(t2)).toEqual(['final-has-outgoing', 'cut-off']);
  });

  it('finds agents cut off from the final agent', () => {
    const t: Topology = { agents: [ag('a'), ag('lonely'), ag('f')], edges: [['a', 'f']], final: 'f' };
    const p = validateTopology(t);
    expect(p.map((x) => x.kind)).toEqual(['cut-off']);
    expect(p[0].agents).toEqual(['lonely']);
    expect(p[0].message).toMatch(/LONELY \(lonely\) has no path to the final agent F \(f\)/);
  });

  it('finds duplicate ids, bad ids, bad latent steps, bad roles and adapters', () => {
    expect(kinds({ agents: [ag('a'), ag('a')], edges: [], final: 'a' })).toEqual(['duplicate-id']);
    expect(kinds({ agents: [ag('a-b')], edges: [], final: 'a-b' })).toContain('bad-id');
    expect(kinds({ agents: [ag('a', 0, { latentSteps: 65 })], edges: [], final: 'a' })).toEqual(['bad-latent-steps']);
    expect(kinds({ agents: [ag('a', 0, { latentSteps: -1 })], edges: [], final: 'a' })).toEqual(['bad-latent-steps']);
    expect(kinds({ agents: [ag('a', 0, { latentSteps: 1.5 })], edges: [], final: 'a' })).toEqual(['bad-latent-steps']);
    expect(kinds({ agents: [ag('a', 0, { latentSteps: 64 })], edges: [], final: 'a' })).toEqual([]);
    expect(kinds({ agents: [ag('a', 0, { latentSteps: 0 })], edges: [], final: 'a' })).toEqual([]);
    expect(kinds({ agents: [ag('a', -1)], edges: [], final: 'a' })).toEqual(['bad-role']);
    expect(kinds({ agents: [ag('a', 3)], edges: [], final: 'a' }, 2)).toEqual(['bad-role']);
    expect(kinds({ agents: [ag('a', 'none')], edges: [], final: 'a' }, 2)).toEqual([]);
    expect(kinds({ agents: [ag('a', 0, { adapter: 'mine' as never })], edges: [], final: 'a' })).toEqual(['bad-adapter']);
    expect(kinds({ agents: [], edges: [], final: 'a' })).toEqual(['no-agents']);
  });

  it('finds edges naming unknown agents and duplicate edges', () => {
    expect(kinds({ agents: [ag('a'), ag('f')], edges: [['a', 'f'], ['x', 'f']], final: 'f' })).toEqual(['unknown-agent-in-edge']);
    expect(kinds({ agents: [ag('a'), ag('f')], edges: [['a', 'f'], ['a', 'f']], final: 'f' })).toEqual(['duplicate-edge']);
  });
});

describe('order and predecessors', () => {
  it('topological order is stable and respects edges', () => {
    const t: Topology = {
      agents: [ag('f'), ag('c'), ag('b'), ag('a')],
      edges: [
        ['a', 'b'],
        ['c', 'f'],
        ['b', 'f'],
        ['a', 'f'],
      ],
      final: 'f',
    };
    expect(validateTopology(t)).toEqual([]);
    expect(topologicalOrder(t)).toEqual(['c', 'a', 'b', 'f']);
    // predecessors follow the agents array order, whatever the edge order
    expect(predecessors(t, 'f')).toEqual(['c', 'b', 'a']);
    expect(successors(t, 'a')).toEqual(['f', 'b']);
    expect(predecessors(t, 'c')).toEqual([]);
  });
});

describe('serialize / parse', () => {
  it('round-trips presets and odd names', () => {
    const odd: Topology = {
      agents: [
        ag('x1', 'none', { name: 'the: odd, one; 100% ü', latentSteps: 0, adapter: 'shared' }),
        ag('y_2', 1, { name: 'y', latentSteps: 64 }),
        ag('z', 0, { name: 'final agent' }),
      ],
      edges: [
        ['x1', 'y_2'],
        ['y_2', 'z'],
      ],
      final: 'z',
    };
    for (const t of [single(), chain(3), star(4, { adapter: 'shared' }), twoRound(), presetForTask(makeTask('relay', 1)), odd]) {
      const s = serializeTopology(t);
      expect(s).not.toMatch(/\s/);
      expect(parseTopology(s)).toEqual(t);
    }
    expect(serializeTopology(presetForTask(makeTask('lookup', 1)))).toBe('v1;a0:0:4:o:table,a1:1:0:o:query;a0-a1;a1');
  });

  it('refuses malformed input with a clear message', () => {
    const cases: [string, RegExp][] = [
      ['', /must start with 'v1;'/],
      ['v2;a:0:0:o:a;;a', /must start with 'v1;'/],
      ['v1;a:0:0:o:a;;a;extra', /expected 4 sections/],
      ['v1;;;a', /agents section is empty/],
      ['v1;a:0:0:o;;a', /agent #1 "a:0:0:o" has 4 fields, expected 5/],
      ['v1;a!:0:0:o:x;;a!', /ids are 1-16 letters/],
      ['v1;a:x:0:o:a;;a', /role "x"/],
      ['v1;a:0:-1:o:a;;a', /latent steps "-1"/],
      ['v1;a:0:0:q:a;;a', /adapter "q"/],
      ['v1;a:0:0:o:%E0%A4%A;;a', /badly escaped name/],
      ['v1;a:0:0:o:a,b:0:0:o:b;a>b;b', /edge "a>b" is not 'from-to'/],
      ['v1;a:0:0:o:a;;', /final agent "" is not a valid id/],
      ['v1;a:0:0:o:a,b:0:0:o:b;a-b,b-a;b', /Cycle: a -> b -> a/],
      ['v1;a:0:99:o:a;;a', /99 latent steps; the range is 0..64/],
    ];
    for (const [s, re] of cases) {
      expect(() => parseTopology(s)).toThrow(/^cannot read topology/);
      expect(() => parseTopology(s)).toThrow(re);
    }
    // a well-formed but invalid graph can be read for the editor to show its problems
    const t = parseTopology('v1;a:0:0:o:a,b:0:0:o:b;a-b,b-a;b', { validate: false });
    expect(kinds(t)).toContain('cycle');
  });
});

// One verdict on whether the setup can run, with its reason, used by the topology editor's status
// line and by the run bar (so the editor never says "valid" while Train is blocked for a reason of
// the setup).
import { validateRunConfig } from '../mas/methods';
import { validateTopology, type TopologyProblem } from '../mas/topology';
import { makeTask } from '../tasks/tasks';
import { runConfigOf, type AppState } from './state';

export interface SetupVerdict {
  /** The graph's own problems (a cycle, no final agent, latent steps out of range...), drawn in the editor. */
  problems: TopologyProblem[];
  /** Why this setup cannot run (the graph's first problem, or what the method or task refuses), without a closing period; null: it can. */
  reason: string | null;
  /** Whether the reason is the graph's own ('topology') or what the method or task refuses of it ('setup'). */
  kind: 'topology' | 'setup' | null;
}

const bare = (m: string) => m.replace(/\.\s*$/, '');

export function setupVerdict(s: AppState): SetupVerdict {
  let parts = 0;
  try {
    parts = makeTask(s.task, s.difficulty).roles.length;
  } catch {
    /* the run config check names a bad task */
  }
  const problems = validateTopology(s.topology, parts ? { parts } : {});
  if (problems.length) {
    return { problems, kind: 'topology', reason: bare(problems.length === 1 ? problems[0].message : `${bare(problems[0].message)} (and ${problems.length - 1} more problems)`) };
  }
  try {
    validateRunConfig(runConfigOf(s));
    return { problems, reason: null, kind: null };
  } catch (e) {
    return { problems, kind: 'setup', reason: bare((e as Error).message.replace(/^run config: /, '')) };
  }
}

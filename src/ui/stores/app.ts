// The shareable setup (src/ui/state.ts), mirrored to the URL hash: a link restores it, and a change
// of what a run depends on ends a finished run (its numbers no longer describe the setup).
import { create } from 'zustand';
import { RUN_PROPS, parseState, serializeState, type AppState } from '../state';
import { useRun } from './run';

interface AppStore {
  state: AppState;
  /** Values of the link that could not be used, each with what the page uses instead (the URL shows the latter). */
  linkProblems: string[];
  set(patch: Partial<AppState>): void;
  /**
   * A value of the link the page found unusable only once it knew more (a layer the model lacks):
   * set what is used instead and say so beside the link's other corrections.
   */
  correct(patch: Partial<AppState>, problems: string[]): void;
  /** Replaces the whole setup (a link opened in this tab, an adapter's run configuration). */
  replace(state: AppState): void;
  dismissLinkProblems(): void;
}

const initial = parseState(typeof location !== 'undefined' ? location.hash : '');
let lastHash = '';

function writeHash(s: AppState): void {
  if (typeof history === 'undefined') return;
  const hash = serializeState(s);
  if (hash === lastHash) return;
  lastHash = hash;
  history.replaceState(null, '', `#${hash}`);
}

export const useApp = create<AppStore>((setState, getState) => ({
  state: initial.state,
  linkProblems: initial.problems,
  set(patch) {
    const prev = getState().state;
    const next = { ...prev, ...patch };
    setState({ state: next });
    writeHash(next);
    if (RUN_PROPS.some((k) => k in patch && patch[k] !== prev[k])) useRun.getState().configChanged();
  },
  replace(state) {
    setState({ state });
    writeHash(state);
    useRun.getState().configChanged();
  },
  correct(patch, problems) {
    getState().set(patch);
    const known = getState().linkProblems;
    setState({ linkProblems: [...known, ...problems.filter((p) => !known.includes(p))] });
  },
  dismissLinkProblems() {
    setState({ linkProblems: [] });
  },
}));

if (typeof window !== 'undefined') {
  writeHash(initial.state);
  // A link pasted into this tab's address bar: restore it.
  window.addEventListener('hashchange', () => {
    if (location.hash.replace(/^#/, '') === lastHash) return;
    // a bad value keeps what the page shows now (one mistyped field changes nothing else)
    const parsed = parseState(location.hash, useApp.getState().state);
    lastHash = '';
    const prev = useApp.getState().state;
    const runChanged = RUN_PROPS.some((k) => JSON.stringify(prev[k]) !== JSON.stringify(parsed.state[k]));
    useApp.setState({ linkProblems: parsed.problems });
    if (!runChanged) {
      // the view's fields only (or a bad value that changed nothing): the run goes on
      useApp.setState({ state: parsed.state });
      writeHash(parsed.state);
      return;
    }
    // A new link is a new setup: an active run of the old one ends.
    if (useRun.getState().state !== 'idle') void useRun.getState().reset();
    useApp.getState().replace(parsed.state);
  });
}

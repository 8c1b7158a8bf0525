// What the worker found (adapter, self-test) and the storage check. Plain data only: everything GPU
// happens in the worker.
import { create } from 'zustand';
import type { EnvReport } from '../../worker/api';
import { checkStorage, requestPersistence, type StorageHealth } from '../../storage/health';
import { getEngine } from '../engine';
import { useLibrary } from './library';

interface EnvState {
  env: EnvReport | null;
  storage: StorageHealth | null;
  loadEnv(): Promise<void>;
  loadStorage(): Promise<void>;
  /**
   * Asks the browser to keep this site's data; resolves to whether it is persistent now, the figure the
   * library's storage line shows too (set before this resolves, so the two never disagree).
   */
  persist(): Promise<boolean>;
}

let envLoading: Promise<void> | null = null;
let storageLoading: Promise<void> | null = null;

export const useEnv = create<EnvState>((setState) => ({
  env: null,
  storage: null,
  loadEnv() {
    envLoading ??= (async () => {
      try {
        setState({ env: await getEngine().init() });
      } catch (e) {
        setState({ env: { ok: false, kind: 'error', message: `the engine worker failed to start: ${(e as Error).message}` } });
      }
    })();
    return envLoading;
  },
  loadStorage() {
    // once per page: two checks at once (the panel mounted twice) raced on one probe key and reported a false failure
    storageLoading ??= (async () => {
      setState({ storage: await checkStorage() });
    })();
    return storageLoading;
  },
  async persist() {
    const granted = await requestPersistence().catch(() => false);
    const storage = await checkStorage();
    setState({ storage });
    // the browser's own answer now (persisted()), else what persist() said
    const persisted = storage.persisted ?? granted;
    await useLibrary.getState().refreshEstimate();
    useLibrary.setState({ persisted });
    return persisted;
  },
}));

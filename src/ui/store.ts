// UI state (zustand). The environment slice: what the worker found and the storage check.
import { create } from 'zustand';
import type { EnvReport } from '../worker/api';
import { checkStorage, requestPersistence, type StorageHealth } from '../storage/health';
import { getEngine } from './engine';

interface EnvState {
  env: EnvReport | null;
  storage: StorageHealth | null;
  loadEnv(): Promise<void>;
  loadStorage(): Promise<void>;
  persist(): Promise<void>;
}

export const useEnv = create<EnvState>((setState) => ({
  env: null,
  storage: null,
  async loadEnv() {
    try {
      setState({ env: await getEngine().init() });
    } catch (e) {
      setState({ env: { ok: false, kind: 'error', message: `the engine worker failed to start: ${(e as Error).message}` } });
    }
  },
  async loadStorage() {
    setState({ storage: await checkStorage() });
  },
  async persist() {
    await requestPersistence();
    setState({ storage: await checkStorage() });
  },
}));

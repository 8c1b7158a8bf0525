// Storage health check for the environment panel: a value written and read back through
// idb-keyval, plus the browser's quota estimate and persistence state.
import { del, get, set } from 'idb-keyval';

export interface StorageHealth {
  indexedDb: boolean;
  roundTripBytes: number;
  usage: number | null;
  quota: number | null;
  persisted: boolean | null;
  error?: string;
}

const PROBE_KEY = 'health:probe';

export async function checkStorage(): Promise<StorageHealth> {
  const out: StorageHealth = { indexedDb: false, roundTripBytes: 0, usage: null, quota: null, persisted: null };
  // a key of its own per check, so two checks at once never read each other's deleted probe
  const PROBE = `${PROBE_KEY}:${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const probe = new Float32Array(1024).map((_, i) => i * 0.5);
    await set(PROBE, { probe, at: Date.now() });
    const back = (await get(PROBE)) as { probe: Float32Array } | undefined;
    if (!back || back.probe.length !== probe.length || back.probe.some((v, i) => v !== probe[i])) {
      throw new Error('IndexedDB returned a different value than was written');
    }
    await del(PROBE);
    out.indexedDb = true;
    out.roundTripBytes = probe.byteLength;
  } catch (e) {
    out.error = `IndexedDB is not usable: ${(e as Error).message}`;
  }
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (storage?.estimate) {
    const est = await storage.estimate();
    out.usage = est.usage ?? null;
    out.quota = est.quota ?? null;
  }
  if (storage?.persisted) out.persisted = await storage.persisted();
  return out;
}

export async function requestPersistence(): Promise<boolean> {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  return storage?.persist ? storage.persist() : false;
}

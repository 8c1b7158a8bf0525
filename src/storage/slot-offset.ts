// The learned latent slot offsets of an adapter (RunConfig.latentSlotOffset; src/mas/slot-offset.ts) as
// a file of their own beside the PEFT files: `latent_slot_offset.safetensors` in the adapter's folder,
// one F32 tensor `latent_slot_offset` of shape [slots, d_model] (row k: the offset added to latent step
// k's input embedding). PEFT ignores the file; the page, the CLI, run bundles and the Python companion
// (python/latent_playground/slot_offset.py) read and write it.
import { decodeSafetensors, encodeSafetensors } from './safetensors';

export const SLOT_OFFSET_FILE = 'latent_slot_offset.safetensors';
export const SLOT_OFFSET_TENSOR = 'latent_slot_offset';

/** Offsets of one adapter: `slots` rows of `dim` values, row-major. */
export interface SlotOffsetData {
  slots: number;
  dim: number;
  data: Float32Array;
}

export function encodeSlotOffset(s: SlotOffsetData): Uint8Array {
  checkSlotOffset(s, 'latent slot offset');
  return encodeSafetensors(new Map([[SLOT_OFFSET_TENSOR, { shape: [s.slots, s.dim], data: s.data }]]), { format: 'pt' });
}

/** Reads the file; `dim`: the base's hidden_size it must have. Throws naming what is wrong. */
export function decodeSlotOffset(bytes: Uint8Array, dim: number): SlotOffsetData {
  let file;
  try {
    file = decodeSafetensors(bytes);
  } catch (e) {
    throw new Error(`${SLOT_OFFSET_FILE} cannot be read: ${(e as Error).message}`);
  }
  const names = [...file.tensors.keys()];
  const t = file.tensors.get(SLOT_OFFSET_TENSOR);
  if (!t || names.length !== 1) throw new Error(`${SLOT_OFFSET_FILE} must hold the one tensor ${SLOT_OFFSET_TENSOR}, it holds ${names.join(', ') || 'none'}`);
  if (t.shape.length !== 2 || t.shape[1] !== dim) {
    throw new Error(`${SLOT_OFFSET_FILE}: ${SLOT_OFFSET_TENSOR} has shape [${t.shape.join(', ')}], expected [slots, ${dim}] (the base's hidden_size)`);
  }
  const s = { slots: t.shape[0], dim, data: t.data };
  checkSlotOffset(s, SLOT_OFFSET_FILE);
  return s;
}

function checkSlotOffset(s: SlotOffsetData, what: string): void {
  if (!(Number.isInteger(s.slots) && s.slots >= 1 && Number.isInteger(s.dim) && s.dim >= 1)) throw new Error(`${what}: shape [${s.slots}, ${s.dim}] is not [slots >= 1, d_model]`);
  if (s.data.length !== s.slots * s.dim) throw new Error(`${what}: ${s.data.length} values for shape [${s.slots}, ${s.dim}]`);
  const bad = s.data.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new Error(`${what}: value ${s.data[bad]} at index ${bad}; offsets must be finite`);
}

/** Adds the offsets' file to an adapter's encoded files (none: the files unchanged). */
export function withSlotOffsetFile(files: Map<string, Uint8Array>, s: SlotOffsetData | undefined): Map<string, Uint8Array> {
  if (s) files.set(SLOT_OFFSET_FILE, encodeSlotOffset(s));
  return files;
}

/** The offsets an adapter's files hold, or undefined when there is no such file. */
export function slotOffsetOfFiles(files: ReadonlyMap<string, Uint8Array>, dim: number): SlotOffsetData | undefined {
  const b = files.get(SLOT_OFFSET_FILE);
  return b ? decodeSlotOffset(b, dim) : undefined;
}

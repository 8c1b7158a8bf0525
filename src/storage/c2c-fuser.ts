// The Cache-to-Cache fuser as a file (src/mas/c2c-fuser.ts says what the tensors are): one
// safetensors file, c2c_fuser.safetensors, beside a run's adapters in a run bundle and under
// --save-adapters. A fuser is not a LoRA adapter, so it does not pretend to be a PEFT folder.
//   layers.{l}.k.A, layers.{l}.v.A  [W, W] float32 (in, out: T = X A)      gate [L, 2] float32
//   metadata: format "latent-playground-c2c-fuser", layers L, kv_width W, rule "Y = X + sigmoid(gate) * (X @ A)"
import { decodeSafetensors, encodeSafetensors, type TensorToWrite } from './safetensors';

export const FUSER_FILE = 'c2c_fuser.safetensors';
export const FUSER_FILE_FORMAT = 'latent-playground-c2c-fuser';
export const FUSER_RULE = 'Y = X + sigmoid(gate[l, kv]) * (X @ A[l, kv]), per layer l and K/V, X the received rows [B*P, W]';

const layerKey = /^layers\.(\d+)\.([kv])\.A$/;

/** Encodes a fuser (names as src/mas/c2c-fuser.ts fuserKey and GATE_KEY) of L layers and K/V width W. */
export function encodeFuserFile(weights: ReadonlyMap<string, Float32Array>, L: number, W: number): Uint8Array {
  const tensors = new Map<string, TensorToWrite>();
  for (const [k, v] of weights) {
    const shape = k === 'gate' ? [L, 2] : [W, W];
    if (k !== 'gate' && !layerKey.test(k)) throw new Error(`c2c fuser file: unexpected tensor ${k}`);
    if (v.length !== shape[0] * shape[1]) throw new Error(`c2c fuser file: ${k} has ${v.length} values, expected ${shape.join(' x ')}`);
    tensors.set(k, { shape, data: v });
  }
  return encodeSafetensors(tensors, { format: FUSER_FILE_FORMAT, layers: String(L), kv_width: String(W), rule: FUSER_RULE });
}

/** Decodes a fuser file; checks its format, its shapes and that every layer's K and V and the gate are there. */
export function decodeFuserFile(bytes: Uint8Array): { weights: Map<string, Float32Array>; L: number; W: number } {
  const st = decodeSafetensors(bytes);
  const md = st.metadata ?? {};
  if (md.format !== FUSER_FILE_FORMAT) throw new Error(`c2c fuser file: format is ${JSON.stringify(md.format)}, not ${JSON.stringify(FUSER_FILE_FORMAT)}`);
  const L = Number(md.layers);
  const W = Number(md.kv_width);
  if (!(Number.isSafeInteger(L) && L > 0 && Number.isSafeInteger(W) && W > 0)) throw new Error('c2c fuser file: the metadata needs layers and kv_width');
  const weights = new Map<string, Float32Array>();
  for (const [k, t] of st.tensors) {
    const want = k === 'gate' ? [L, 2] : [W, W];
    const m = layerKey.exec(k);
    if (k !== 'gate' && !(m && Number(m[1]) < L)) throw new Error(`c2c fuser file: unexpected tensor ${k} (a fuser of ${L} layers)`);
    if (t.shape.join(',') !== want.join(',')) throw new Error(`c2c fuser file: ${k} has shape [${t.shape.join(', ')}], expected [${want.join(', ')}]`);
    weights.set(k, t.data);
  }
  for (let l = 0; l < L; l++) for (const kind of ['k', 'v']) if (!weights.has(`layers.${l}.${kind}.A`)) throw new Error(`c2c fuser file: layers.${l}.${kind}.A is missing`);
  if (!weights.has('gate')) throw new Error('c2c fuser file: gate is missing');
  return { weights, L, W };
}

// A learned input offset per latent slot (RunConfig.latentSlotOffset; issue 22 item 2). A sender's
// latent steps share its adapter, so step k and step k' differ only by what they attend over; the
// offset o_k (one vector of d_model per slot k = 0..m-1, zero at the start) is added to the input
// embedding latent step k feeds back,
//
//   e_k = rescale(h_{k-1} W_a) + o_k,
//
// which lets each slot start from its own point. The gradient of o_k is the gradient arriving at
// latent step k's input embedding, summed over the batch rows (and over the agents that share the
// adapter). The offsets belong to an adapter (an agent id or 'shared'); they train with its LoRA in
// the same AdamW, and are saved beside it (src/storage/slot-offset.ts). On the GPU each slot is one
// [D] tensor, so the forward and backward are the bias kernels (shaders/bias.wgsl): y [B, D] += o_k,
// do_k += column sums of dy.
import type { Dispatch, Gpu, Tensor } from '../gpu/runtime';
import { prepareBias, prepareBiasBackward } from '../gpu/ops/bias';
import type { TrainParam } from '../model/train';
import type { SlotOffsetData } from '../storage/slot-offset';
import type { PlanAgent } from './data';

/** Optimizer parameter name of slot k (the LoRA's are `<module>.lora_A`/`lora_B`). */
export const slotOffsetParamName = (k: number): string => `latent_slot_offset.${k}`;

/** Slots each adapter key needs: the most latent steps among the senders that use it (keys of no sender are absent). */
export function slotOffsetSlots(plan: readonly PlanAgent[], keyOf: (pa: PlanAgent) => string | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const pa of plan) {
    const key = keyOf(pa);
    if (key === null || pa.final || pa.m < 1) continue;
    out.set(key, Math.max(out.get(key) ?? 0, pa.m));
  }
  return out;
}

/** One adapter's offsets on the GPU: slots tensors o_k [D] and their gradients. */
export class SlotOffsetGpu {
  readonly o: Tensor[];
  readonly d: Tensor[];

  constructor(
    readonly gpu: Gpu,
    readonly slots: number,
    readonly D: number,
    readonly label: string,
  ) {
    if (!(Number.isInteger(slots) && slots >= 1)) throw new Error(`slot offset: ${slots} slots, expected at least 1`);
    this.o = Array.from({ length: slots }, (_, k) => gpu.tensor([D], `${label} o${k}`));
    this.d = Array.from({ length: slots }, (_, k) => gpu.tensor([D], `${label} grad o${k}`));
  }

  /** e [B, D] += o_k (after the latent map wrote e). */
  prepareForward(k: number, e: Tensor, B: number): Dispatch {
    return prepareBias(this.gpu, this.slot(k), e, B, this.D);
  }

  /** do_k += sum over the B rows of dE [B, D] (after the latent pass's backward wrote dE). */
  prepareBackward(k: number, dE: Tensor, B: number): Dispatch {
    return prepareBiasBackward(this.gpu, dE, this.d[k], B, this.D);
  }

  private slot(k: number): Tensor {
    if (!(k >= 0 && k < this.slots)) throw new Error(`slot offset ${this.label}: latent step ${k + 1}, but it holds ${this.slots} slots`);
    return this.o[k];
  }

  /** The optimizer's parameters, slot by slot (no weight decay: a bias, as the norms). */
  trainParams(): TrainParam[] {
    return this.o.map((param, k) => ({ name: slotOffsetParamName(k), param, grad: this.d[k], decay: false }));
  }

  async read(): Promise<SlotOffsetData> {
    const data = new Float32Array(this.slots * this.D);
    for (let k = 0; k < this.slots; k++) data.set(await this.gpu.read(this.o[k]), k * this.D);
    return { slots: this.slots, dim: this.D, data };
  }

  /** Writes saved offsets: the same slots and width (a run's offsets are made for its own topology). */
  load(s: SlotOffsetData, what: string): void {
    if (s.slots !== this.slots || s.dim !== this.D || s.data.length !== this.slots * this.D) {
      throw new Error(`${what}: its latent slot offset is [${s.slots}, ${s.dim}], this run's is [${this.slots}, ${this.D}] (the senders' latent steps, d_model)`);
    }
    for (let k = 0; k < this.slots; k++) this.gpu.write(this.o[k], s.data.subarray(k * this.D, (k + 1) * this.D));
  }

  destroy(): void {
    for (const t of [...this.o, ...this.d]) this.gpu.destroy(t);
  }
}

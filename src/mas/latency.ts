// The latency budget of issue 22 (the regime Cache-to-Cache and LatentMAS claim): every sender gets T
// sequential passes after its prompt. Text spends them decoding T tokens (a text budget of T); a cache
// method (a latent channel whose receiver reads the sender's full trace, latentmas-full, diffmas-full)
// spends them on T latent steps after the prefilled prompt, so its receiver reads the prompt's K/V plus
// T positions per sender. A cache wins on latency (its prompt costs no sequential pass: it is one
// parallel prefill), text on positions read (T per sender against the prompt's length + T).
//
// T = 0 on each side:
//   text: zero decoded tokens is no message at all, so the receiver reads nothing from its senders:
//         text runs as `single` and text-trained as `single-trained` (the final agent with its own part
//         and, trained, its LoRA on the answer with the same steps; nothing crosses). A text run with
//         an empty message would add only the empty "msg:" frame; the receiver alone is the cleaner
//         zero and is what every report's bounds call the floor.
//   cache: the sender's prefilled prompt cache with 0 latent steps (topology latentSteps 0), which the
//         full trace allows (validateRunConfig refuses it only for the latent-only trace, whose message
//         would be empty).
// The report records this under args.latency (LatencyArgs), and bench/latency.mjs reads it.
import { methodSpec, type MethodSpec } from './methods';
import type { MethodName } from './run-types';

/** The points of the sweep. */
export const LATENCY_POINTS: readonly number[] = Object.freeze([0, 1, 2, 4, 8]);
/** The largest T: the text budget's limit (methods.ts LIMITS.textBudget) and the CLI's latent steps'. */
export const MAX_LATENCY = 64;

/** What a latency report carries in args.latency. */
export interface LatencyArgs {
  /** Sequential sender passes per sender. */
  T: number;
  /** Each requested method and the method run for it at this T (only text's change, at T = 0). */
  runAs: Record<string, MethodName>;
  /** How the text side spends T, in words. */
  text: string;
  /** How the cache side spends T, in words. */
  cache: string;
}

/** The side of a method in the latency budget: text, cache, or a reference that sends nothing. */
export function latencySide(spec: MethodSpec): 'text' | 'cache' | 'reference' | null {
  if (spec.channel === 'text') return 'text';
  if (spec.channel === 'latent') return spec.trace === 'full' ? 'cache' : null;
  return spec.channel === 'none' ? 'reference' : null;
}

/** The method that stands for a text method at T = 0 (nothing crosses): the receiver alone, trained as the text method is. */
export function textAtZero(spec: MethodSpec): MethodName {
  return spec.train === 'none' ? 'single' : 'single-trained';
}

/**
 * The runs of a latency point: the methods to run (deduplicated, in the order given), the senders'
 * latent steps (T) and the text budget (T; null at T = 0, where no text method runs), with the record
 * for the report. Throws on a T out of range or a method that has no place in the latency budget.
 */
export function latencyPlan(methods: readonly string[], T: number): { methods: MethodName[]; latentSteps: number; textBudget: number | null; record: LatencyArgs } {
  if (!Number.isInteger(T) || T < 0 || T > MAX_LATENCY) throw new Error(`latency: T must be an integer in 0..${MAX_LATENCY} (sequential sender passes), got ${JSON.stringify(T)}`);
  if (!methods.length) throw new Error('latency: no methods');
  const runAs: Record<string, MethodName> = {};
  for (const m of methods) {
    const spec = methodSpec(m);
    const side = latencySide(spec);
    if (side === null && spec.channel !== 'latent') throw new Error(`latency: ${m} sends over a ${spec.channel} channel, neither text nor a prompt cache with latent steps`);
    if (side === null) {
      throw new Error(
        `latency: ${m} passes on only its latent positions, not the prefilled prompt cache, so it is no cache method of the latency budget (at T = 0 it would send nothing): use ${spec.train === 'none' ? 'latentmas-full' : 'diffmas-full'}`,
      );
    }
    runAs[m] = side === 'text' && T === 0 ? textAtZero(spec) : spec.name;
  }
  const run = [...new Set(Object.values(runAs))];
  const record: LatencyArgs = {
    T,
    runAs,
    text: T === 0
      ? 'T = 0: no decoded token, no message; text runs as single and text-trained as single-trained (the receiver alone, reading nothing from its senders)'
      : `T = ${T}: each sender decodes ${T} token${T === 1 ? '' : 's'} (text budget ${T}); the receiver reads at most ${T} position${T === 1 ? '' : 's'} per sender`,
    cache: `each sender's prefilled prompt K/V plus ${T} latent step${T === 1 ? '' : 's'} (latent steps ${T}); the receiver reads the sender's prompt length + ${T} positions per sender`,
  };
  return { methods: run, latentSteps: T, textBudget: T === 0 ? null : T, record };
}

/** The methods of the sweep: text and the cache, untrained and equally trained. */
export const LATENCY_METHODS: readonly MethodName[] = Object.freeze(['text', 'text-trained', 'latentmas-full', 'diffmas-full', 'c2c'] as MethodName[]);

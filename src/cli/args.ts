// Tiny argument parser for the CLI: --name value, --name=value, --flag, and a help text per command.
// Strict on purpose: an option given twice, a flag given a value, a count that is not a plain
// decimal integer in range, or a list with an empty item is a UsageError naming the option, never a
// silent guess. `--name=value` splits at the first `=` only (a value may hold `=`).
export interface ArgSpec {
  name: string;
  help: string;
  default?: string;
  flag?: boolean;
}

/** A plain decimal integer: optional minus, digits, no leading zeros, no sign, exponent, hex or spaces. */
const INTEGER = /^-?(0|[1-9]\d*)$/;
/** A plain decimal number: optional sign, digits with an optional fraction, optional exponent. */
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export class Args {
  private readonly values = new Map<string, string>();
  constructor(argv: string[], readonly specs: ArgSpec[], readonly usage: string) {
    const known = (key: string) => key === 'help' || specs.some((s) => s.name === key);
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}'`);
      const eq = a.indexOf('=');
      const key = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const inline = eq < 0 ? undefined : a.slice(eq + 1);
      const spec = specs.find((s) => s.name === key);
      if (!spec && key !== 'help') throw new UsageError(`unknown option --${key}`);
      if (this.values.has(key)) throw new UsageError(`--${key} is given twice`);
      if (key === 'help' || spec?.flag) {
        if (inline !== undefined) throw new UsageError(`--${key} is a flag and takes no value, got '${a}'`);
        this.values.set(key, 'true');
      } else {
        let v = inline;
        if (v === undefined) {
          v = argv[++i];
          if (v === undefined) throw new UsageError(`--${key} needs a value`);
          // `--out --force` is a forgotten value, not a folder named --force (write --out=--force for that)
          if (v.startsWith('--') && known(v.slice(2).split('=')[0])) throw new UsageError(`--${key} needs a value, got the option ${v}`);
        }
        this.values.set(key, v);
      }
    }
  }
  get help(): boolean {
    return this.values.has('help');
  }
  helpText(): string {
    const rows = this.specs.map((s) => {
      const left = `  --${s.name}${s.flag ? '' : ' <value>'}`;
      return `${left.padEnd(28)} ${s.help}${s.default !== undefined ? ` (default ${s.default})` : ''}`;
    });
    return `${this.usage}\n\noptions:\n${rows.join('\n')}\n  --help                     this text`;
  }
  has(name: string): boolean {
    return this.values.has(name);
  }
  str(name: string): string | undefined {
    return this.values.get(name) ?? this.specs.find((s) => s.name === name)?.default;
  }
  /** A plain decimal integer in [min, max] (no 0x3, 1e2, +3, 3.0 or empty value). */
  int(name: string, min = -Infinity, max = Infinity): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    return parseInteger(v, `--${name}`, min, max);
  }
  num(name: string, min = -Infinity, max = Infinity): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const n = NUMBER.test(v) ? Number(v) : NaN;
    if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number in [${min}, ${max}], got '${v}'`);
    return n;
  }
  /** A comma-separated list; an empty item (`a,,b`, a trailing comma, an empty value) is refused. */
  list(name: string): string[] | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    return parseList(v, `--${name}`);
  }
}

export function parseInteger(v: string, what: string, min = -Infinity, max = Infinity): number {
  const n = INTEGER.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${what} must be a plain decimal integer in [${min}, ${max}], got '${v}'`);
  }
  return n;
}

export function parseList(v: string, what: string): string[] {
  const items = v.split(',').map((s) => s.trim());
  const empty = items.findIndex((s) => s === '');
  if (empty >= 0) {
    throw new UsageError(`${what} has an empty item${items.length > 1 ? ` (item ${empty + 1} of ${items.length})` : ''} in '${v}'; separate items with single commas`);
  }
  return items;
}

/**
 * Seeds: a count K (seeds 1..K, K in [1, maxCount]) or a list of distinct seeds (each a plain
 * decimal integer in [0, 2^31), at most maxCount of them).
 */
export function parseSeeds(v: string, what = '--seeds', maxCount = 1000): number[] {
  if (!v.includes(',')) {
    const k = parseInteger(v, `${what} (a count K of seeds 1..K, or a comma-separated list)`, 1, maxCount);
    return Array.from({ length: k }, (_, i) => i + 1);
  }
  const list = parseList(v, what).map((s) => parseInteger(s, `each seed in ${what}`, 0, 2 ** 31 - 1));
  if (list.length > maxCount) throw new UsageError(`${what} lists ${list.length} seeds, more than ${maxCount}`);
  const dup = list.find((s, i) => list.indexOf(s) !== i);
  if (dup !== undefined) throw new UsageError(`${what} lists seed ${dup} twice`);
  return list;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

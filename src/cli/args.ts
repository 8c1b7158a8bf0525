// Tiny argument parser for the CLI: --name value, --flag, and a help text per command.
export interface ArgSpec {
  name: string;
  help: string;
  default?: string;
  flag?: boolean;
}

export class Args {
  private readonly values = new Map<string, string>();
  constructor(argv: string[], readonly specs: ArgSpec[], readonly usage: string) {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}'`);
      const [key, inline] = a.slice(2).split('=', 2);
      const spec = specs.find((s) => s.name === key);
      if (!spec && key !== 'help') throw new UsageError(`unknown option --${key}`);
      if (key === 'help' || spec?.flag) this.values.set(key, 'true');
      else {
        const v = inline ?? argv[++i];
        if (v === undefined) throw new UsageError(`--${key} needs a value`);
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
  int(name: string, min = -Infinity, max = Infinity): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got '${v}'`);
    }
    return n;
  }
  num(name: string, min = -Infinity, max = Infinity): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number in [${min}, ${max}], got '${v}'`);
    return n;
  }
  list(name: string): string[] | undefined {
    return this.str(name)?.split(',').map((s) => s.trim()).filter(Boolean);
  }
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

// The name an imported model or adapter gets in the library, from what a person chose: the zip's or
// the one file's name, the folder's name, else what its config.json says it is. Two imports of
// different models are never both "imported model"; a name already taken gets " (2)", " (3)", ...
// Pure: no DOM, no storage.

/** The file name without its folders and its .zip / .gguf / .safetensors extension. */
function stem(path: string): string {
  const parts = path.split(/[\\/]/);
  return (parts[parts.length - 1] || path).replace(/\.(zip|gguf|safetensors)$/i, '');
}

/**
 * What the files given are called: one file (a zip, a GGUF) by its name; the files of one folder (a
 * folder picked in the page has paths "folder/config.json") by the folder; '' when they are loose.
 */
export function importLabel(paths: readonly string[]): string {
  if (paths.length === 1) return stem(paths[0]).trim();
  const tops = new Set(paths.map((p) => (/[\\/]/.test(p) ? p.split(/[\\/]/)[0] : '')));
  if (tops.size === 1) {
    const [top] = tops;
    if (top && top !== '.' && top !== '..') return top.trim();
  }
  return '';
}

/**
 * A model's name from its config.json: the last part of `_name_or_path` ("Qwen/Qwen2-0.5B" ->
 * "Qwen2-0.5B"), else its type and shape ("llama, 4 layers × 64").
 */
export function modelNameFromConfig(config: Record<string, unknown>): string {
  const named = config._name_or_path;
  if (typeof named === 'string' && named.trim()) {
    const last = named.trim().replace(/[\\/]+$/, '').split(/[\\/]/).pop();
    if (last && last !== '.' && last !== '..') return last;
  }
  const type = typeof config.model_type === 'string' && config.model_type ? config.model_type : 'model';
  const layers = config.num_hidden_layers;
  const width = config.hidden_size;
  return typeof layers === 'number' && typeof width === 'number' ? `${type}, ${layers} layers × ${width}` : type;
}

/** `name`, or `name (k)` with the smallest k >= 2 that no entry in `taken` has. */
export function uniqueName(name: string, taken: readonly string[]): string {
  const used = new Set(taken);
  if (!used.has(name)) return name;
  for (let k = 2; ; k++) if (!used.has(`${name} (${k})`)) return `${name} (${k})`;
}

// Which of the files given to the library's import are read (the page picks them before reading a
// byte, so that a hub folder's other formats are neither read nor counted against the quota).

/** A picked or dropped file as far as the choice needs it (a DOM File fits). */
export interface ImportCandidate {
  name: string;
  /** The path inside a picked folder ('' or absent for a picked or dropped file). */
  webkitRelativePath?: string;
}

/**
 * The files of an import worth reading. Picked or dropped files: all of them (the worker says what
 * they are). From a folder: only its own zips, JSON and safetensors files (not those of subfolders
 * such as onnx/); a hub folder's pytorch_model.bin, ONNX or GGUF files are neither read nor counted
 * against the quota.
 */
export function importable<F extends ImportCandidate>(files: readonly F[]): F[] {
  // a picked folder that is a run bundle (run.json at its top) goes whole: its adapters lie deeper
  if (files.some((f) => f.webkitRelativePath && f.webkitRelativePath.split('/').length === 2 && f.name === 'run.json')) return files.slice();
  return files.filter((f) => {
    if (!f.webkitRelativePath) return true;
    const rel = f.webkitRelativePath.split('/');
    return rel.length <= 2 && /\.(zip|json|safetensors)$/i.test(f.name);
  });
}

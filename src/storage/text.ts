// Names and lists for error messages: a name read from a file (a zip entry, a tensor) is shown quoted,
// with control and invisible characters escaped and long names cut; a long list shows five and a count.

const ODD = /["\\]|[\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\ufffd]/g;

/** `"name"` with quotes, backslashes, control and invisible characters escaped; cut at 80 characters. */
export function printableName(name: string): string {
  const cut = name.length > 80 ? `${name.slice(0, 77)}...` : name;
  return `"${cut.replace(ODD, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))}"`;
}

/** At most `max` items joined with commas, then "and N more". */
export function listShort(items: readonly string[], max = 5): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

/** The names of a set of files for a message (plain names bare, others quoted and escaped), at most five, then how many more. */
export function filesPresent(files: ReadonlyMap<string, unknown>): string {
  return files.size ? listShort([...files.keys()].map((n) => (/^[\w.+@-][\w.+@ /-]{0,79}$/.test(n) ? n : printableName(n)))) : 'none';
}

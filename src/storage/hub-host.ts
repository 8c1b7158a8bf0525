// Where the Hugging Face Hub is, and how a model on it is named. The Hub's host is set here and only
// here: the CLI overrides it with the HF_ENDPOINT environment variable (the variable huggingface_hub
// reads), the page with its ?hub= URL field or the field in the library's "From the Hub" form; tests
// point both at a local server (tests/hub-server.ts). Pure: no DOM, no Node APIs.

/** The Hub's address when nothing overrides it. */
export const DEFAULT_HUB_HOST = 'https://huggingface.co';

/** A model on the Hub: its repository id and a revision (a branch, a tag or a commit). */
export interface HubRef {
  repo: string;
  revision: string;
}

/** A Hub address or repository name that cannot be used; the message says why. */
export class HubError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HubError';
  }
}

/** The host to use: `override` when given (trailing slashes dropped), else DEFAULT_HUB_HOST. */
export function hubHost(override?: string | null): string {
  const h = (override ?? '').trim();
  if (!h) return DEFAULT_HUB_HOST;
  let url: URL;
  try {
    url = new URL(h);
  } catch {
    throw new HubError(`the Hub address ${JSON.stringify(h)} is not a URL (expected something like ${DEFAULT_HUB_HOST})`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new HubError(`the Hub address ${JSON.stringify(h)} must start with https:// or http://`);
  return h.replace(/\/+$/, '');
}

const PART = /^[A-Za-z0-9][\w.-]{0,95}$/;

/**
 * 'ORG/NAME' or 'ORG/NAME@REVISION', with or without the CLI's 'hf:' prefix; the revision defaults
 * to main. Throws HubError naming what is wrong.
 */
export function parseHubRef(text: string): HubRef {
  const s = text.trim().replace(/^hf:/, '');
  const at = s.indexOf('@');
  const repo = at >= 0 ? s.slice(0, at) : s;
  const revision = at >= 0 ? s.slice(at + 1) : 'main';
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => PART.test(p) && !p.includes('..') && !p.endsWith('.'))) {
    throw new HubError(`${JSON.stringify(text)} is not a Hub model id: give ORG/NAME (letters, digits, '-', '_', '.'), for example HuggingFaceTB/SmolLM2-135M-Instruct, optionally @REVISION`);
  }
  if (!/^[\w.\/-]{1,200}$/.test(revision) || revision.includes('..') || revision.startsWith('/')) {
    throw new HubError(`${JSON.stringify(revision)} is not a revision: give a branch, a tag or a commit id (letters, digits, '-', '_', '.', '/')`);
  }
  return { repo, revision };
}

/** The API address that lists a revision's files with their sizes and checksums. */
export function hubInfoUrl(host: string, ref: HubRef): string {
  return `${host}/api/models/${ref.repo}/revision/${encodeURIComponent(ref.revision)}?blobs=true`;
}

/** The address of one file of a revision. */
export function hubFileUrl(host: string, repo: string, revision: string, file: string): string {
  return `${host}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

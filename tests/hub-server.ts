// A stand-in for the Hugging Face Hub on localhost (machines here cannot reach the real one): node
// http serving models at the Hub's URL paths, with the API's JSON, so the downloader, the CLI's
// `--model hf:` and the page's "From the Hub" are tested as they would run against huggingface.co.
//   GET /api/models/{org}/{name}/revision/{rev}?blobs=true   { id, sha, siblings[{ rfilename, size, blobId, lfs? }] }
//   GET /{org}/{name}/resolve/{rev}/{file}                   the file (Range: bytes=N- answered 206); an LFS
//                                                            file is a 302 to /cdn/{org}/{name}/{sha256}, as the Hub redirects
// Switches (set on the returned object between requests):
//   dropAfter: { file, bytes }  the next response of `file` sends `bytes` bytes, then the socket is destroyed (once)
//   wrongSha: file              the API lists a wrong sha256 (or blob id) for `file`
//   ignoreRange: true           Range headers are ignored (200 with the whole file)
// `requests` lists every file path served (for "no weights were fetched" checks). CORS is open, as the Hub's is.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export type RepoFiles = Map<string, Uint8Array>;

export interface HubServer {
  url: string;
  /** the commit every repository's revisions resolve to */
  commit: string;
  dropAfter: { file: string; bytes: number } | null;
  wrongSha: string | null;
  ignoreRange: boolean;
  /** served file requests, as "repo/file (range)" */
  requests: string[];
  close(): Promise<void>;
}

const isLfs = (name: string) => name.endsWith('.safetensors') || name.endsWith('.bin');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitBlobId = (b: Uint8Array) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

/** The files of a folder (not its subfolders), as a repository's. */
export function repoFromFolder(dir: string): RepoFiles {
  const out: RepoFiles = new Map();
  for (const n of readdirSync(dir, { withFileTypes: true })) if (n.isFile()) out.set(n.name, new Uint8Array(readFileSync(path.join(dir, n.name))));
  return out;
}

/** Serves `repos` (repository id -> files) on 127.0.0.1 (port 0: any free one). */
export async function startHubServer(repos: Record<string, RepoFiles>, port = 0): Promise<HubServer> {
  const commit = createHash('sha1').update(Object.keys(repos).join(',')).digest('hex');
  const cdn = new Map<string, { repo: string; name: string; bytes: Uint8Array }>();
  for (const [repo, files] of Object.entries(repos)) for (const [name, bytes] of files) if (isLfs(name)) cdn.set(`${repo}/${sha256(bytes)}`, { repo, name, bytes });
  const state: Omit<HubServer, 'url' | 'close' | 'commit'> = { dropAfter: null, wrongSha: null, ignoreRange: false, requests: [] };

  const sendFile = (req: http.IncomingMessage, res: http.ServerResponse, repo: string, name: string, bytes: Uint8Array) => {
    const range = state.ignoreRange ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    state.requests.push(`${repo}/${name}${range ? ` (from ${from})` : ''}`);
    if (from > bytes.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` }).end();
      return;
    }
    const body = bytes.subarray(from);
    res.writeHead(range ? 206 : 200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(body.length),
      'Accept-Ranges': 'bytes',
      ...(range ? { 'Content-Range': `bytes ${from}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    const drop = state.dropAfter;
    if (drop && drop.file === name && drop.bytes < body.length) {
      state.dropAfter = null;
      // the pause lets a busy browser hand the bytes to the page before the socket goes (with 20 ms,
      // Chromium under CI load sometimes dropped them all and the retry could not resume)
      res.write(body.subarray(0, drop.bytes), () => setTimeout(() => res.socket?.destroy(), 500));
      return;
    }
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length, Accept-Ranges');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Headers': 'Range', 'Access-Control-Allow-Methods': 'GET' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const p = decodeURIComponent(url.pathname);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(p);
    if (api) {
      const files = repos[api[1]];
      if (!files) {
        res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'Repository not found' }));
        return;
      }
      const siblings = [...files].map(([name, bytes]) => {
        const wrong = state.wrongSha === name;
        return isLfs(name)
          ? { rfilename: name, size: bytes.length, blobId: gitBlobId(bytes), lfs: { sha256: wrong ? '0'.repeat(64) : sha256(bytes), size: bytes.length, pointerSize: 134 } }
          : { rfilename: name, size: bytes.length, blobId: wrong ? '0'.repeat(40) : gitBlobId(bytes) };
      });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: api[1], modelId: api[1], sha: commit, siblings }));
      return;
    }
    const cdnHit = /^\/cdn\/([^/]+\/[^/]+\/[0-9a-f]{64})$/.exec(p);
    if (cdnHit && cdn.has(cdnHit[1])) {
      const f = cdn.get(cdnHit[1])!;
      sendFile(req, res, f.repo, f.name, f.bytes);
      return;
    }
    const file = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p);
    const bytes = file ? repos[file[1]]?.get(file[3]) : undefined;
    if (!file || !bytes || (file[2] !== 'main' && file[2] !== commit)) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    if (isLfs(file[3])) {
      res.writeHead(302, { Location: `/cdn/${file[1]}/${sha256(bytes)}` }).end();
      return;
    }
    sendFile(req, res, file[1], file[3], bytes);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const hub = Object.assign(state, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    commit,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  });
  return hub as HubServer;
}

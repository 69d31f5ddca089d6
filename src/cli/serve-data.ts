// `tabswarm serve`'s dataset routes (docs/deployment.md): POST /api/data turns an uploaded UTF-8 text into a run's
// DataSpec (prepareTextData), and GET /api/data/<trainSha256>/{train.u32,val.u32,tokenizer.json} hands the splits and
// the tokenizer to every peer, addressed by the train split's hash (immutable: a hash names one content). `--data
// FILE` is prepared once at start and kept; uploads are kept in memory up to a byte budget, oldest dropped first.
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename } from 'node:path';
import { z } from 'zod';
import { HttpError, readBody, sendBytes, sendJson } from '../../signaling-server/http-util';
import type { Route } from '../../signaling-server/http-app';
import { prepareTextData, TextDataError, type TextData } from '../model/text-data';
import { dataSpecSchema, type DataSpec } from '../protocol/run-config';

export const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;
/** Bytes of token ids kept for uploads (a --data dataset does not count): past it the oldest upload is dropped. */
export const UPLOAD_STORE_BYTES = 1024 * 1024 * 1024;
/** Uploads tokenized at once; more get 503 (each holds its body and its tokens in memory meanwhile). */
const MAX_CONCURRENT_UPLOADS = 2;

export interface DataOptions {
  tokenizer: 'char' | 'gpt2';
  vocab?: 'used' | 'full';
}

interface Stored {
  spec: DataSpec;
  train: Buffer;
  val: Buffer;
  tokenizer: Buffer;
  pinned: boolean;
}

/** Token ids as little-endian u32 bytes (the wire format of train.u32 / val.u32). */
function leBytes(ids: Uint32Array): Buffer {
  if (endianness() === 'LE') return Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength); // already the wire order
  const out = Buffer.allocUnsafe(ids.length * 4);
  for (let i = 0; i < ids.length; i++) out.writeUInt32LE(ids[i], i * 4);
  return out;
}

export class DataStore {
  private readonly sets = new Map<string, Stored>();

  /** `base`: the path prefix every URL starts with ('/', or --public-url's path ending in '/'). */
  constructor(
    private readonly base: string = '/',
    private readonly budgetBytes: number = UPLOAD_STORE_BYTES,
  ) {}

  /** Keeps a prepared dataset and returns its DataSpec with `url`. 409 when the hash names another tokenizer. */
  add(data: TextData, pinned: boolean): DataSpec {
    const sha = data.spec.trainSha256;
    const tokenizer = Buffer.from(data.tokenizer.toJSON(), 'utf8');
    const existing = this.sets.get(sha);
    if (existing) {
      // Same token ids under another vocabulary (two char texts can both read 0,1,2,...): the first one keeps the URL.
      if (!existing.tokenizer.equals(tokenizer))
        throw new HttpError(409, `a dataset with train sha256 ${sha} and another tokenizer is already served`);
      this.sets.delete(sha); // re-inserted below: the newest
      existing.pinned ||= pinned;
      this.sets.set(sha, existing);
      return existing.spec;
    }
    const spec = dataSpecSchema.parse({ ...data.spec, url: `${this.base}api/data/${sha}/` });
    this.sets.set(sha, { spec, train: leBytes(data.train), val: leBytes(data.val), tokenizer, pinned });
    this.evict();
    return spec;
  }

  get(sha: string): Stored | undefined {
    return this.sets.get(sha);
  }

  private evict(): void {
    const size = (s: Stored): number => (s.pinned ? 0 : s.train.length + s.val.length + s.tokenizer.length);
    let total = [...this.sets.values()].reduce((a, s) => a + size(s), 0);
    for (const [sha, s] of this.sets) {
      if (total <= this.budgetBytes) break;
      if (s.pinned) continue;
      this.sets.delete(sha);
      total -= size(s);
    }
  }
}

/** `serve --data FILE`: read, prepared and pinned before the server starts (an error names the file). */
export async function loadDataFile(store: DataStore, path: string, o: DataOptions): Promise<DataSpec> {
  const bytes = await readFile(path).catch((e: Error) => {
    throw new Error(`--data ${path}: ${e.message}`);
  });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`--data ${path} is not UTF-8 text`);
  }
  return store.add(await prepareTextData(text, { ...o, name: basename(path) }), true);
}

const uploadQuery = z
  .object({
    name: z.string().min(1).max(200).default('upload.txt'),
    tokenizer: z.enum(['char', 'gpt2']),
    vocab: z.enum(['used', 'full']).optional(),
  })
  .strict()
  .refine((q) => q.tokenizer === 'gpt2' || q.vocab === undefined, { message: 'vocab applies to tokenizer=gpt2 only' });

const FILES: Record<string, { pick: (s: Stored) => Buffer; type: string }> = {
  'train.u32': { pick: (s) => s.train, type: 'application/octet-stream' },
  'val.u32': { pick: (s) => s.val, type: 'application/octet-stream' },
  'tokenizer.json': { pick: (s) => s.tokenizer, type: 'application/json; charset=utf-8' },
};

export interface DataRouteOptions {
  /** False (serve --no-upload): POST /api/data answers 403. */
  upload: boolean;
  maxUploadBytes?: number;
  log?: (s: string) => void;
}

export function dataRoutes(store: DataStore, o: DataRouteOptions): Route[] {
  const maxBytes = o.maxUploadBytes ?? MAX_UPLOAD_BYTES;
  let inFlight = 0;
  return [
    {
      method: 'POST',
      path: /^\/api\/data$/,
      async handle({ req, res, url }) {
        if (!o.upload) throw new HttpError(403, 'uploads are turned off on this server (serve --no-upload)');
        const q = uploadQuery.safeParse(Object.fromEntries(url.searchParams));
        if (!q.success) throw new HttpError(400, `query: ${q.error.issues.map((i) => `${i.path.join('.') || '(query)'}: ${i.message}`).join('; ')}`);
        if (inFlight >= MAX_CONCURRENT_UPLOADS) throw new HttpError(503, 'too many uploads in progress: try again in a moment');
        inFlight++;
        try {
          const body = await readBody(req, res, maxBytes);
          if (body.length === 0) throw new HttpError(400, 'the body is empty: send the text to train on');
          let text: string;
          try {
            text = new TextDecoder('utf-8', { fatal: true }).decode(body);
          } catch {
            throw new HttpError(400, 'the body is not UTF-8 text');
          }
          let data: TextData;
          try {
            data = await prepareTextData(text, q.data);
          } catch (e) {
            if (e instanceof TextDataError) throw new HttpError(400, e.message);
            throw e;
          }
          const spec = store.add(data, false);
          o.log?.(`dataset ${JSON.stringify(spec.name)}: ${spec.trainTokens} + ${spec.valTokens} ${spec.tokenizer} tokens at ${spec.url}`);
          sendJson(res, 200, spec, { 'cache-control': 'no-store' });
        } finally {
          inFlight--;
        }
      },
    },
    {
      method: 'GET',
      path: /^\/api\/data\/([0-9a-f]{64})\/(train\.u32|val\.u32|tokenizer\.json)$/,
      handle({ res, match }) {
        const set = store.get(match[1]);
        if (!set) throw new HttpError(404, `no dataset ${match[1]} on this server`);
        const file = FILES[match[2]];
        sendBytes(res, file.pick(set), file.type, { 'cache-control': 'public, max-age=31536000, immutable' });
      },
    },
  ];
}

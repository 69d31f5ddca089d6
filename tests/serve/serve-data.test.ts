// The dataset routes of `tabswarm serve`: a text uploaded (POST /api/data) becomes a run's DataSpec whose splits and
// tokenizer download under their hash and decode back to the text; bad uploads (empty, not UTF-8, too short, too
// large, bad query, a hash collision) are a 4xx; --no-upload refuses; --data FILE is served from the start.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_UPLOAD_BYTES } from '../../src/cli/serve-data';
import { startServe, type ServeHandle } from '../../src/cli/serve';
import { tokenizerFromJSON } from '../../src/model/text-data';
import { dataSpecSchema, type DataSpec } from '../../src/protocol/run-config';
import { parseServeConfig } from '../../src/protocol/serve-config';
import { raw } from './helpers';

const TEXT = 'To be, or not to be, that is the question: whether tis nobler in the mind to suffer. '.repeat(14);
const LIMIT = 8 * 1024;
let srv: ServeHandle;
let locked: ServeHandle;
let fromFile: ServeHandle;
let file: string;

beforeAll(async () => {
  srv = await startServe({ port: 0, pages: false, maxUploadBytes: LIMIT });
  locked = await startServe({ port: 0, pages: false, upload: false });
  file = join(mkdtempSync(join(tmpdir(), 'tabswarm-serve-data-')), 'hamlet.txt');
  writeFileSync(file, TEXT);
  fromFile = await startServe({ port: 0, pages: false, data: { path: file, tokenizer: 'char' } });
});
afterAll(async () => {
  await Promise.all([srv?.close(), locked?.close(), fromFile?.close()]);
});

function upload(s: ServeHandle, query: string, body: Buffer | string) {
  return raw(`${s.url}/api/data?${query}`, { method: 'POST', body, headers: { 'content-type': 'text/plain; charset=utf-8' } });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const ids = (b: Buffer): number[] => Array.from({ length: b.length / 4 }, (_, i) => b.readUInt32LE(i * 4));

/** Downloads a served dataset and checks it against its spec: hashes, sizes, and the text it decodes to. */
async function checkServed(s: ServeHandle, spec: DataSpec, text: string): Promise<void> {
  const get = async (f: string) => {
    const r = await raw(`${s.url}${spec.url}${f}`);
    expect(r.status, f).toBe(200);
    expect(r.headers['cache-control']).toMatch(/immutable/);
    return r.body;
  };
  const [train, val, tok] = await Promise.all([get('train.u32'), get('val.u32'), get('tokenizer.json')]);
  expect(sha(train)).toBe(spec.trainSha256);
  expect(sha(val)).toBe(spec.valSha256);
  expect(train.length / 4).toBe(spec.trainTokens);
  expect(val.length / 4).toBe(spec.valTokens);
  const tokenizer = tokenizerFromJSON(tok.toString('utf8'));
  expect(tokenizer.decode(ids(train)) + tokenizer.decode(ids(val))).toBe(text);
}

describe('tabswarm serve: datasets', () => {
  it('turns an uploaded text into a DataSpec whose hash-addressed files download and decode back (char)', async () => {
    const r = await upload(srv, 'name=hamlet.txt&tokenizer=char', TEXT);
    expect(r.status, r.body.toString()).toBe(200);
    const spec = dataSpecSchema.parse(JSON.parse(r.body.toString()));
    expect(spec).toMatchObject({ tokenizer: 'char', name: 'hamlet.txt', url: `/api/data/${spec.trainSha256}/` });
    expect(spec.trainTokens + spec.valTokens).toBe(TEXT.length);
    await checkServed(srv, spec, TEXT);
  });

  it('GPT-2 BPE with the used vocabulary', async () => {
    const r = await upload(srv, 'tokenizer=gpt2&vocab=used', TEXT.repeat(3));
    expect(r.status, r.body.toString()).toBe(200);
    const spec = dataSpecSchema.parse(JSON.parse(r.body.toString()));
    expect(spec).toMatchObject({ tokenizer: 'gpt2', vocab: 'used', name: 'upload.txt' });
    await checkServed(srv, spec, TEXT.repeat(3));
  });

  it('refuses bad uploads with a 4xx that says why', async () => {
    const cases: [string, string, Buffer | string, number, RegExp][] = [
      ['empty', 'tokenizer=char', '', 400, /empty/],
      ['not UTF-8', 'tokenizer=char', Buffer.from([0x61, 0xff, 0xfe, 0x80, 0x62]), 400, /not UTF-8/],
      ['too short for a window', 'tokenizer=char', 'hello world', 400, /too short/],
      ['over the limit', 'tokenizer=char', 'x'.repeat(LIMIT + 1), 413, /over the limit/],
      ['no tokenizer', 'name=a', TEXT, 400, /tokenizer/],
      ['vocab with char', 'tokenizer=char&vocab=full', TEXT, 400, /vocab applies to tokenizer=gpt2 only/],
      ['an unknown parameter', 'tokenizer=char&admin=1', TEXT, 400, /admin|unrecognized/i],
      ['a bad tokenizer', 'tokenizer=sentencepiece', TEXT, 400, /tokenizer/],
    ];
    for (const [what, query, body, status, message] of cases) {
      const r = await upload(srv, query, body);
      expect(r.status, what).toBe(status);
      expect(JSON.parse(r.body.toString()).error, what).toMatch(message);
    }
    expect((await raw(`${srv.url}/api/data/${'0'.repeat(64)}/train.u32`)).status).toBe(404);
    expect((await raw(`${srv.url}/api/data/${'0'.repeat(64)}/secrets.txt`)).status).toBe(404);
    expect((await raw(`${srv.url}/api/data`)).status).toBe(405);
  });

  it('refuses a declared body over 64 MiB before reading it (the default limit)', async () => {
    const r = await raw(`${locked.url}/api/data?tokenizer=char`, { method: 'POST', headers: { 'content-length': String(MAX_UPLOAD_BYTES + 1) } });
    // `locked` refuses every upload (403) before it looks at the body; the size check is on the default server:
    expect(r.status).toBe(403);
    const big = await startServe({ port: 0, pages: false });
    try {
      const t = await raw(`${big.url}/api/data?tokenizer=char`, { method: 'POST', headers: { 'content-length': String(MAX_UPLOAD_BYTES + 1) } });
      expect(t.status).toBe(413);
    } finally {
      await big.close();
    }
  });

  it('keeps the first tokenizer when another text has the same token ids (409, no replacement)', async () => {
    const a = 'ab'.repeat(400);
    const b = 'cd'.repeat(400); // the same ids 0,1,0,1,... under another vocabulary
    const ra = await upload(srv, 'tokenizer=char', a);
    expect(ra.status).toBe(200);
    const rb = await upload(srv, 'tokenizer=char', b);
    expect(rb.status).toBe(409);
    await checkServed(srv, dataSpecSchema.parse(JSON.parse(ra.body.toString())), a);
  });

  it('--no-upload: 403, and /api/config says so', async () => {
    const r = await upload(locked, 'tokenizer=char', TEXT);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body.toString()).error).toMatch(/--no-upload/);
    expect(parseServeConfig(await (await fetch(`${locked.url}/api/config`)).json()).upload).toBe(false);
  });

  it('--data FILE: prepared at start, reported in /api/config and served', async () => {
    const c = parseServeConfig(await (await fetch(`${fromFile.url}/api/config`)).json());
    expect(c.data).not.toBeNull();
    expect(c.data).toEqual(fromFile.data);
    expect(c.data).toMatchObject({ name: 'hamlet.txt', tokenizer: 'char' });
    if (c.data) await checkServed(fromFile, c.data, TEXT);
  });
});

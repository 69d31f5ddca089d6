// runTokens/runSplits against a real HTTP server on loopback serving a prepared dataset (train.u32, val.u32,
// tokenizer.json), as `tabswarm serve` lays it out; tampered files and other texts are refused, naming what.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRun } from '../coordinator/run-builder';
import { loadCorpus } from '../model/corpus-node';
import { Dataset } from '../model/data';
import { prepareTextData, type TextData } from '../model/text-data';
import { tokensToBytes } from '../model/token-hash';
import { CharTokenizer } from '../model/tokenizer';
import { charTokens, DataRefusal, runSplits, runTokens } from './run-data';

const TEXT = Array.from(
  { length: 40 },
  (_, i) => `Note ${i}: the ferry left at dawn with ${i * 3} bicycles, two dogs and a piano 🎹 for Åsa.\n`,
).join('');

let server: Server;
let base: string;
let data: TextData;
const files = new Map<string, Uint8Array | string>();

beforeAll(async () => {
  data = await prepareTextData(TEXT, { tokenizer: 'gpt2', name: 'ferry.txt' });
  const dir = `/api/data/${data.spec.trainSha256}/`;
  files.set(`${dir}train.u32`, tokensToBytes(data.train));
  files.set(`${dir}val.u32`, tokensToBytes(data.val));
  files.set(`${dir}tokenizer.json`, data.tokenizer.toJSON());
  // A copy whose train split has one id changed.
  const bad = data.train.slice();
  bad[3] = (bad[3] + 1) % data.tokenizer.vocabSize;
  files.set('/tampered/train.u32', tokensToBytes(bad));
  files.set('/short/train.u32', tokensToBytes(data.train).slice(0, 10));
  server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const runWith = (url?: string) =>
  buildRun({ 'block-size': 16, 'run-id': 'r1' }, { vocab: data.tokenizer.vocabSize, data: { ...data.spec, ...(url ? { url } : {}) } });

describe('runTokens', () => {
  it('fetches the splits from data.url (relative to the base) and checks them', async () => {
    const run = runWith(`/api/data/${data.spec.trainSha256}/`);
    expect(Array.from(await runTokens(run, { base }))).toEqual(Array.from(data.train));
    const s = await runSplits(run, { base });
    expect(Array.from(s.val)).toEqual(Array.from(data.val));
    expect(s.tokenizer.decode(s.train) + s.tokenizer.decode(s.val)).toBe(TEXT);
    // An absolute URL needs no base.
    expect((await runTokens(runWith(`${base}/api/data/${data.spec.trainSha256}`), {})).length).toBe(data.train.length);
  });

  it('refuses a tampered or truncated download, naming the URL and both hashes', async () => {
    const err = await runTokens(runWith('/tampered/'), { base }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataRefusal);
    expect((err as Error).message).toContain(`${base}/tampered/train.u32: sha256 `);
    expect((err as Error).message).toContain(`the run's is ${data.spec.trainSha256}`);
    await expect(runTokens(runWith('/short/'), { base })).rejects.toThrow(/short\/train.u32: 10 bytes is not a whole number/);
    await expect(runTokens(runWith('/missing/'), { base })).rejects.toThrow(/missing\/train.u32: HTTP 404/);
  });

  it('refuses a relative URL without a base, and a run with no URL and no file', async () => {
    await expect(runTokens(runWith('/api/data/x/'), {})).rejects.toThrow(/relative to the server it came from: give --serve URL/);
    await expect(runTokens(runWith(), {})).rejects.toThrow(/"ferry.txt".*give this peer the same file \(--data FILE --tokenizer gpt2 --vocab used\)/);
  });

  it("takes the peer's own file when its hashes match; another text or tokenizer is refused with both hashes", async () => {
    const run = runWith();
    expect(Array.from(await runTokens(run, { file: { path: '/tmp/ferry.txt', text: TEXT } }))).toEqual(Array.from(data.train));
    const other = TEXT.replace('piano', 'cello');
    const err = await runTokens(run, { file: { path: '/tmp/other.txt', text: other } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataRefusal);
    const m = (err as Error).message;
    expect(m).toContain('/tmp/other.txt (gpt2, vocab used) is not run r1\'s dataset "ferry.txt"');
    expect(m).toContain(data.spec.trainSha256);
    const otherSpec = (await prepareTextData(other, { tokenizer: 'gpt2', name: 'o' })).spec;
    expect(m).toContain(otherSpec.trainSha256);
    await expect(runTokens(run, { file: { path: '/tmp/empty.txt', text: '' } })).rejects.toThrow(/\/tmp\/empty.txt: "ferry.txt" is empty/);
  });

  it('a run without data: the default corpus, character tokenizer, as Dataset.fromText splits it', async () => {
    const text = loadCorpus();
    const ref = Dataset.fromText(text, CharTokenizer.fromCorpus(text), { valFraction: 0.1 });
    const run = buildRun({ 'run-id': 'd' }, 65);
    expect(run.data).toBeUndefined();
    const train = await runTokens(run, { defaultText: () => text });
    expect(train.length).toBe(ref.train.length);
    expect(Buffer.from(tokensToBytes(train)).equals(Buffer.from(tokensToBytes(ref.train)))).toBe(true);
    await expect(runTokens(run, { file: { path: 'f.txt', text: TEXT } })).rejects.toThrow(
      /f.txt: its \d+ characters are not the run's vocabulary of 65/,
    );
  });

  it('charTokens slices never split a surrogate pair', async () => {
    const text = ('a'.repeat((1 << 17) - 1) + '🎹').repeat(3);
    const { tokenizer, tokens } = await charTokens(text);
    expect(tokenizer.vocabSize).toBe(2);
    expect(tokenizer.decode(tokens)).toBe(text);
  });
});

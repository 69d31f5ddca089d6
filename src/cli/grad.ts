// `tabswarm grad --checkpoint C --batch B.json --out G.safetensors`: the loss and the gradient of every parameter
// for one batch, in the checkpoint's names and layouts, so anyone can check the engine against another framework.
import { readFileSync } from 'node:fs';
import { Trainer } from '../model/trainer';
import { parse, required } from './args';
import { cliRuntime, loadCheckpointFile, saveCheckpointFile } from './engine';

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const gradSummary = 'the loss and the gradient of every parameter for one batch, to check the engine against another framework';

export const gradHelp = `tabswarm grad --checkpoint C --batch B.json --out G.safetensors
  B.json: {"inputs": [[ids...], ...], "targets": [[ids...], ...]}  (B rows of T <= block_size ids each)
  prints {"loss": ...}; G holds d(mean loss)/d(param) for every parameter (wte includes the tied lm_head's share)`;

export function parseBatchJson(text: string, vocab: number, blockSize: number): { B: number; T: number; inputs: Uint32Array; targets: Uint32Array } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`batch: not JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof raw !== 'object' || raw === null) throw new Error('batch: expected an object {"inputs": [[...]], "targets": [[...]]}');
  const obj = raw as Record<string, unknown>;
  const rows = (key: string): number[][] => {
    const v = obj[key];
    if (!Array.isArray(v) || v.length === 0) throw new Error(`batch: "${key}" must be a non-empty array of rows`);
    return v.map((row, i) => {
      if (!Array.isArray(row) || row.length === 0) throw new Error(`batch: ${key}[${i}] must be a non-empty array of token ids`);
      return row.map((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= vocab)
          throw new Error(`batch: ${key}[${i}][${j}] = ${JSON.stringify(id)} is not a token id below vocab_size ${vocab}`);
        return id as number;
      });
    });
  };
  const inputs = rows('inputs');
  const targets = rows('targets');
  const T = inputs[0].length;
  if (T > blockSize) throw new Error(`batch: rows have ${T} tokens, more than block_size ${blockSize}`);
  if (targets.length !== inputs.length) throw new Error(`batch: ${inputs.length} input rows but ${targets.length} target rows`);
  for (const [name, rs] of [
    ['inputs', inputs],
    ['targets', targets],
  ] as const) {
    rs.forEach((r, i) => {
      if (r.length !== T) throw new Error(`batch: ${name}[${i}] has ${r.length} ids, expected ${T} like inputs[0]`);
    });
  }
  return { B: inputs.length, T, inputs: Uint32Array.from(inputs.flat()), targets: Uint32Array.from(targets.flat()) };
}

export async function grad(argv: string[]): Promise<number> {
  const { values } = parse(argv, { checkpoint: { type: 'string' }, batch: { type: 'string' }, out: { type: 'string' } });
  const ck = loadCheckpointFile(required(values, 'checkpoint'));
  const batchPath = required(values, 'batch');
  const out = required(values, 'out');
  const batch = parseBatchJson(readFileSync(batchPath, 'utf8'), ck.config.vocab_size, ck.config.block_size);
  const rt = await cliRuntime();
  const trainer = await Trainer.create(rt, {
    config: ck.config,
    B: batch.B,
    T: batch.T,
    initial: ck.params,
    tune: false,
    schedule: { lr: 0, minLr: 0, warmup: 0, decaySteps: 1 },
  });
  const st = trainer.stage;
  st.zeroGrads();
  st.setTokens(0, batch.inputs);
  st.setTargets(0, batch.targets);
  const lossT = st.forward(0);
  st.backward(0, { lossScale: 1 / (batch.B * batch.T) });
  const loss = (await rt.read(lossT))[0];
  const grads = await st.params.read('grads');
  saveCheckpointFile(out, { config: ck.config, params: grads, extra: { content: 'gradients of the mean loss', loss: String(loss) } });
  console.log(JSON.stringify({ loss }));
  rt.destroy();
  return 0;
}

// `node bin/run-ts.mjs bench/net-main.ts`: the network benchmark alone (see bench/net.ts).
// `--measure-only <out.json>` is how benchNet() runs it inside a private network namespace.
import { writeFileSync } from 'node:fs';
import { benchNet, measureNet } from './net';

const i = process.argv.indexOf('--measure-only');
if (i >= 0) {
  const out = process.argv[i + 1];
  if (!out) throw new Error('--measure-only needs an output path');
  writeFileSync(out, JSON.stringify(await measureNet()));
} else {
  await benchNet();
}
process.exit(0);

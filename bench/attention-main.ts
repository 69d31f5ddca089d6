// `node bin/run-ts.mjs bench/attention-main.ts`: times the attention kernels alone on the default Node adapter.
import { nodeRuntime } from '../src/gpu/node-runtime';
import { benchAttention } from './attention';

const rt = await nodeRuntime();
try {
  await benchAttention(rt);
} finally {
  rt.destroy();
}

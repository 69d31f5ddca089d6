// `npm run bench -- big`: GPT-2 small (12 x 768, 12 heads, vocabulary 50,257, context 256) split across 4 Node peers,
// each under a third of the whole model's training memory, one step against the single-process engine in the same
// run (tests/big/gpt2-split.ts). Several minutes on a 2-core CPU adapter; not part of a plain `npm run bench`.
import { runGpt2Split, type BigSplitResult } from '../tests/big/gpt2-split';

export async function benchBig(): Promise<BigSplitResult> {
  const r = await runGpt2Split({ log: (s) => console.log(`[big] ${s}`) });
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  console.log('\nGPT-2 small split across peers (B=%d, T=%d, one step)', r.B, r.T);
  console.table(
    r.stages.map((s) => ({
      layers: `[${s.layers[0]}, ${s.layers[1]})`,
      'planned MiB': mib(s.planned_bytes),
      'allocated MiB': mib(s.allocated_bytes),
      'budget MiB': mib(r.budget_bytes),
      'share of the whole': `${((100 * s.allocated_bytes) / r.model_train_bytes).toFixed(1)} %`,
    })),
  );
  console.table([
    {
      who: `swarm (${r.peers} peers, one process)`,
      'step ms': r.step_ms.toFixed(0),
      'tokens/s': r.tokens_per_s.toFixed(1),
      loss: r.loss_swarm.toFixed(6),
    },
    { who: 'single process', 'step ms': r.single_step_ms.toFixed(0), 'tokens/s': r.single_tokens_per_s.toFixed(1), loss: r.loss_single.toFixed(6) },
  ]);
  console.log(
    `whole model ${mib(r.model_train_bytes)} MiB to train in one place; largest peer ${mib(r.max_peer_train_bytes)} MiB ` +
      `(${((100 * r.max_peer_train_bytes) / r.model_train_bytes).toFixed(1)} %); parity: worst ${r.parity_worst} ` +
      `${r.parity_max_rel.toExponential(2)} of its max |w|; HF safetensors ${mib(r.safetensors_bytes)} MiB, round trip ` +
      `${r.safetensors_roundtrip_bitwise ? 'bitwise' : 'NOT bitwise'}`,
  );
  return r;
}

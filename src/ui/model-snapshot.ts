// The coordinator page's copy of the trained model: the parameters collected from one replica per stage by an
// observer peer (CoordinatorRun.collectWeights, src/coordinator/weight-collector.ts: over WebRTC, never through the
// signaling server), then, on this page's own WebGPU adapter, text samples (src/coordinator/sample-text.ts), the
// validation loss on the run's held-out split (src/coordinator/val-loss.ts) and a safetensors checkpoint
// (src/model/checkpoint.ts: Hugging Face GPT-2 names, config and tokenizer in the metadata).
import type { Runtime } from '../gpu/runtime';
import { browserRuntime } from '../gpu/browser-runtime';
import { encodeCheckpoint } from '../model/checkpoint';
import type { TextTokenizer } from '../model/text-tokenizer';
import { runBottleneck } from '../coordinator/run-model';
import { sampleText } from '../coordinator/sample-text';
import { validationLoss } from '../coordinator/val-loss';
import type { RunConfig } from '../protocol/run-config';

/** Validation batches the page evaluates (the CLI's 50 take long on a CPU adapter; the same batches, fewer). */
export const PAGE_EVAL_BATCHES = 10;

export class ModelSnapshot {
  private rt: Promise<Runtime> | null = null;

  constructor(
    readonly run: RunConfig,
    /** Steps completed when the weights were copied. */
    readonly step: number,
    readonly params: Map<string, Float32Array>,
    readonly tokenizer: TextTokenizer,
  ) {}

  private runtime(): Promise<Runtime> {
    return (this.rt ??= browserRuntime());
  }

  /** `tokens` tokens sampled after `prompt` (empty: a newline), seeded. */
  async sample(prompt: string, tokens: number, seed: number): Promise<string> {
    const rt = await this.runtime();
    // The person's prompt, then what the model wrote after it.
    return prompt + (await sampleText(rt, this.run.model, this.params, this.tokenizer, tokens, seed, runBottleneck(this.run), prompt || '\n'));
  }

  /** The loss on the run's validation split (PAGE_EVAL_BATCHES batches of B 12, as `tabswarm eval` spreads them). */
  async validationLoss(val: Uint32Array): Promise<number> {
    return validationLoss(await this.runtime(), this.run, this.params, val, { maxBatches: PAGE_EVAL_BATCHES });
  }

  /** The weights as a safetensors checkpoint; a character tokenizer goes in its metadata, a GPT-2 one is named. */
  checkpoint(): Uint8Array {
    const bottleneck = runBottleneck(this.run);
    return encodeCheckpoint({
      config: this.run.model,
      params: this.params,
      ...(bottleneck ? { bottleneck } : {}),
      ...(this.tokenizer.kind === 'char' ? { tokenizer: this.tokenizer.toJSON() } : {}),
      extra: {
        tabswarm_run: this.run.runId,
        tabswarm_step: String(this.step),
        ...(this.tokenizer.kind === 'char' ? {} : { tabswarm_tokenizer: this.tokenizer.toJSON() }),
      },
    });
  }

  close(): void {
    void this.rt?.then((rt) => rt.destroy()).catch(() => undefined);
    this.rt = null;
  }
}

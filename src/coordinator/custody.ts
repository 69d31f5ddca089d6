// Custody (docs/resilience.md): every `checkpoint.every` steps one stage in turn (round robin) sends its newest
// checkpoint to a peer of another stage (rotating), so every stage has a copy outside itself, at most every x S steps
// old. The source is a replica of the stage that reported checkpoint-saved for that step: the rota waits for that
// report before it names it. Only with two or more stages (one stage has nobody outside it).
import type { CheckpointRef, ControlOf } from '../protocol/messages';

export interface CustodyOptions {
  stages: number;
  every: number;
  send(msg: ControlOf<'custody'>): void;
}

export class CustodyRota {
  private nextStage = 0;
  private nextKeeper = 0;
  /** The custody due: (stage, step), sent once a replica of the stage saved its checkpoint at step. */
  private pending: { stage: number; step: number } | null = null;
  /** Who saved what, for the pending custody (key `${stage}:${step}`). */
  private readonly savers = new Map<string, string[]>();
  /** Members as of the latest call (a keeper is a live member of another stage). */
  private members: string[][] = [];

  constructor(private readonly o: CustodyOptions) {}

  /** After a completed step: `step` steps applied. */
  afterStep(step: number, members: string[][]): void {
    this.members = members;
    if (this.o.stages < 2 || step === 0 || step % this.o.every !== 0) return;
    this.pending = { stage: this.nextStage, step };
    this.nextStage = (this.nextStage + 1) % this.o.stages;
    // Older reports cannot be the pending one's source.
    for (const k of [...this.savers.keys()]) if (Number(k.split(':')[1]) < step) this.savers.delete(k);
    this.flush();
  }

  /** A checkpoint-saved from `from`. */
  onSaved(from: string, ref: CheckpointRef, members: string[][]): void {
    this.members = members;
    if (!members[ref.stage]?.includes(from)) return; // a keeper's copy, or a non-member's: not a source
    const key = `${ref.stage}:${ref.step}`;
    const list = this.savers.get(key) ?? [];
    if (!list.includes(from)) list.push(from);
    this.savers.set(key, list);
    this.flush();
  }

  private flush(): void {
    const p = this.pending;
    if (!p) return;
    const source = (this.savers.get(`${p.stage}:${p.step}`) ?? []).find((x) => this.members[p.stage]?.includes(x));
    if (!source) return;
    const keepers = this.members.flatMap((m, s) => (s === p.stage ? [] : m));
    if (keepers.length === 0) return;
    const keeper = keepers[this.nextKeeper % keepers.length];
    this.nextKeeper++;
    this.pending = null;
    this.o.send({ type: 'custody', stage: p.stage, step: p.step, source, keeper });
  }
}

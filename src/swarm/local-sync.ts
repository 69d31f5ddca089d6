// Local-steps mode's replica sync (docs/compression.md "Local steps"): after the coordinator's `sync-begin`, every
// replica of a stage sends its compressed pseudo-gradient (src/model/outer-optimizer.ts) to every other replica of
// the stage (all-gather, tensor kind 'local-sync'), and each applies the outer step from all R payloads in rank order, so
// the replicas end bitwise identical. A payload is a few percent of the fp32 gradient (int8, top-k), so the
// all-gather's R-1 copies per replica cost less than one butterfly of fp32 would.
import { TensorDemux } from '../net/tensor-demux';
import type { IncomingTensor } from '../net/tensor';
import type { Transport } from '../net/transport';
import type { RunConfig } from '../protocol/run-config';
import { readSyncMeta, syncMeta } from '../protocol/tensors';

export const SYNC_KIND = 'local-sync';

export interface LocalSyncSpec {
  H: number;
  outerLr: number;
  outerMomentum: number;
}

/** The run's local-steps sync spec, or null in per-step mode (the default). */
export function localSyncOf(run: RunConfig): LocalSyncSpec | null {
  const s = run.compress?.sync;
  return s?.mode === 'local' ? { H: s.H, outerLr: s.outerLr, outerMomentum: s.outerMomentum } : null;
}

/**
 * Lanes of a membership: R = the smallest replica count over the stages; lane r is replica r of every stage.
 * Replicas past R idle (they take no microbatches and no syncs).
 */
export function lanesOf(members: readonly (readonly string[])[]): string[][] {
  const R = Math.min(...members.map((m) => m.length));
  return members.map((m) => m.slice(0, R));
}

/** The next-stage replica of this peer's lane (replica r of stage s passes to replica r of stage s+1), if linked. */
export function laneNext(
  members: readonly (readonly string[])[],
  stage: number,
  self: string,
  linked: (peer: string) => boolean,
): string | undefined {
  const r = members[stage]?.indexOf(self) ?? -1;
  const next = r >= 0 ? members[stage + 1]?.[r] : undefined;
  return next !== undefined && linked(next) ? next : undefined;
}

type Waiter = { resolve: (b: Uint8Array) => void; reject: (e: Error) => void };

/** One per transport: buffers the peer's 'local-sync' payloads by (step, stage, rank) until the sync takes them. */
export class SyncMailbox {
  private static readonly attached = new WeakMap<Transport, SyncMailbox>();
  /** Payloads kept at most (a sync takes them at once; more means a peer runs ahead by many syncs). */
  static maxBuffered = 16;
  private readonly box = new Map<string, Uint8Array>();
  private readonly waiters = new Map<string, Waiter>();
  /** Payloads dropped: bad meta, or the buffer full. */
  dropped = 0;
  lastProblem = '';

  static of(t: Transport): SyncMailbox {
    let m = SyncMailbox.attached.get(t);
    if (!m) {
      m = new SyncMailbox(t);
      SyncMailbox.attached.set(t, m);
    }
    return m;
  }

  private constructor(t: Transport) {
    TensorDemux.of(t).on(SYNC_KIND, (x) => this.deliver(x));
    t.onClose((info) => {
      for (const w of this.waiters.values()) w.reject(new Error(`link to ${t.peerId} closed during a sync (${info.reason})`));
      this.waiters.clear();
      this.box.clear();
    });
  }

  private static key(step: number, stage: number, rank: number): string {
    return `${step}:${stage}:${rank}`;
  }

  private deliver(x: IncomingTensor): void {
    const m = readSyncMeta(x.meta);
    if (!m.ok || x.dtype !== 'u8') {
      this.dropped++;
      this.lastProblem = m.ok ? `sync payload of dtype ${x.dtype}, expected u8` : m.error;
      return;
    }
    const key = SyncMailbox.key(m.value.step, m.value.stage, m.value.rank);
    const w = this.waiters.get(key);
    if (w) {
      this.waiters.delete(key);
      w.resolve(x.bytes);
      return;
    }
    if (this.box.size >= SyncMailbox.maxBuffered) {
      this.dropped++;
      this.lastProblem = 'sync mailbox full';
      return;
    }
    this.box.set(key, x.bytes);
  }

  /** The payload of replica `rank` of `stage` for the sync after `step`. */
  take(step: number, stage: number, rank: number, timeoutMs: number): Promise<Uint8Array> {
    const key = SyncMailbox.key(step, stage, rank);
    const got = this.box.get(key);
    if (got) {
      this.box.delete(key);
      return Promise.resolve(got);
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`no sync payload from replica ${rank} of stage ${stage} after step ${step} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(key, {
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }
}

/**
 * All-gather of one stage's sync payloads: sends `payload` to every other replica, returns all R payloads in rank
 * order (its own at `rank`). `links[j]`: the transport to replica j (undefined at `rank`).
 */
export async function gatherSyncPayloads(o: {
  links: readonly (Transport | undefined)[];
  rank: number;
  step: number;
  stage: number;
  payload: Uint8Array;
  timeoutMs: number;
}): Promise<Uint8Array[]> {
  const R = o.links.length;
  const link = (j: number): Transport => {
    const t = o.links[j];
    if (!t) throw new Error(`sync after step ${o.step}: no link to replica ${j} of stage ${o.stage}`);
    return t;
  };
  const waits: Promise<Uint8Array>[] = [];
  for (let j = 0; j < R; j++) if (j !== o.rank) waits.push(SyncMailbox.of(link(j)).take(o.step, o.stage, j, o.timeoutMs));
  const meta = syncMeta({ step: o.step, stage: o.stage, rank: o.rank });
  await Promise.all(
    Array.from({ length: R }, (_, j) => j)
      .filter((j) => j !== o.rank)
      .map((j) => link(j).sendTensor({ kind: SYNC_KIND, dtype: 'u8', shape: [o.payload.length], data: o.payload, meta })),
  );
  const theirs = await Promise.all(waits);
  const out: Uint8Array[] = [];
  let k = 0;
  for (let j = 0; j < R; j++) out.push(j === o.rank ? o.payload : theirs[k++]);
  return out;
}

// What one member computed in one step attempt (docs/trust.md "Validators"): the order its backward passes ran in
// (its gradient accumulated in that order), the digests of the boundary payloads it sent and received, its losses
// (last stage) and the digest of the stage gradient it contributes to the reduce. Sent to the coordinator as
// `step-trace` at step-reduce; the coordinator checks that neighbours agree and picks contributions to validate.
// The recorder also keeps the step's received payloads (and what it sent) until the next step begins: a validator
// of this step gets them uploaded (src/swarm/validator.ts).
import type { ControlOf } from '../protocol/messages';

export type BoundaryKind = 'act' | 'grad';

/** One boundary payload of a step: microbatch, the other peer, the payload kind, its bytes (a copy of its own). */
export interface TracedPayload {
  mb: number;
  peer: string;
  kind: BoundaryKind;
  bytes: Uint8Array;
  digest: Promise<string>;
  /** Received payloads: the sender's signature of the digest (checked on arrival), which the trace reports with it. */
  sig?: string;
}

/** Hex of the first 16 bytes of SHA-256: a digest an adversary cannot forge a second payload for. */
export async function digestBytes(b: Uint8Array): Promise<string> {
  // WebCrypto copies the data when called: the caller may reuse or transfer `b` afterwards.
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', b as Uint8Array<ArrayBuffer>));
  let s = '';
  for (let i = 0; i < 16; i++) s += h[i].toString(16).padStart(2, '0');
  return s;
}

/** The digest of a float vector (its bytes). */
export function digestVector(v: Float32Array): Promise<string> {
  return digestBytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
}

/**
 * Entries per step-trace part, within the schema's bounds (128 sent, 128 received, 1024 backward, 256 losses) and so
 * that a full part, escaped into its signed envelope, stays under the 16 KiB control limit: 32 sent (~85 chars each),
 * 32 received (~180 with the signature), 256 backward (~6), 64 losses (~30): ~12 KB.
 */
const PART_SENT = 32;
const PART_RECV = 32;
const PART_BACKWARD = 256;
const PART_LOSSES = 64;

const NOTHING = new Uint8Array(0);

export class StepTraceRecorder {
  /** `keep`: keep the payloads themselves (the run validates), not just their digests. */
  constructor(private readonly keep: boolean) {}

  step = -1;
  attempt = -1;
  readonly backward: number[] = [];
  readonly sent: TracedPayload[] = [];
  readonly recv: TracedPayload[] = [];
  readonly losses = new Map<number, number | null>();

  /** A new attempt: everything of the previous one (its kept payloads too) is dropped. */
  begin(step: number, attempt: number): void {
    this.step = step;
    this.attempt = attempt;
    this.backward.length = 0;
    this.sent.length = 0;
    this.recv.length = 0;
    this.losses.clear();
  }

  is(step: number, attempt: number): boolean {
    return this.step === step && this.attempt === attempt;
  }

  /**
   * A payload received, with its digest and its sender's signature of it (both checked on arrival). Kept for an
   * upload: a copy, since the original may be transferred to a worker.
   */
  received(mb: number, peer: string, kind: BoundaryKind, bytes: Uint8Array, digest: string, sig: string): void {
    this.recv.push({ mb, peer, kind, bytes: this.keep ? bytes.slice() : NOTHING, digest: Promise.resolve(digest), sig });
  }

  /**
   * A payload sent (kept: a cross-adapter validation compares its values). Returns a copy of the bytes to send (the
   * caller's buffer may be reused before the signed send goes out) and their digest.
   */
  sentTo(mb: number, peer: string, kind: BoundaryKind, bytes: Uint8Array): { copy: Uint8Array; digest: Promise<string> } {
    const copy = bytes.slice();
    const digest = digestBytes(copy);
    this.sent.push({ mb, peer, kind, bytes: this.keep ? copy : NOTHING, digest });
    return { copy, digest };
  }

  backwardRan(mb: number): void {
    this.backward.push(mb);
  }

  loss(mb: number, loss: number | null): void {
    this.losses.set(mb, loss);
  }

  /** The received payload of (mb, kind), if any (the last one received wins, as in the pipeline). */
  input(mb: number, kind: BoundaryKind): TracedPayload | undefined {
    for (let i = this.recv.length - 1; i >= 0; i--) if (this.recv[i].mb === mb && this.recv[i].kind === kind) return this.recv[i];
    return undefined;
  }

  output(mb: number, kind: BoundaryKind): TracedPayload | undefined {
    for (let i = this.sent.length - 1; i >= 0; i--) if (this.sent[i].mb === mb && this.sent[i].kind === kind) return this.sent[i];
    return undefined;
  }

  /** The step-trace message(s) of this attempt, split into parts when over one message's bounds. */
  async messages(stage: number, contrib: string | undefined, last: boolean): Promise<ControlOf<'step-trace'>[]> {
    const entry = async (p: TracedPayload): Promise<[number, string, string]> => [p.mb, p.peer, await p.digest];
    const sent = await Promise.all(this.sent.map(entry));
    const recv = await Promise.all(
      this.recv.map(async (p): Promise<[number, string, string, string]> => [p.mb, p.peer, await p.digest, p.sig ?? '']),
    );
    const losses = [...this.losses.entries()];
    const parts = Math.max(
      1,
      Math.ceil(sent.length / PART_SENT),
      Math.ceil(recv.length / PART_RECV),
      Math.ceil(this.backward.length / PART_BACKWARD),
      Math.ceil(losses.length / PART_LOSSES),
    );
    return Array.from({ length: parts }, (_, part) => ({
      type: 'step-trace' as const,
      step: this.step,
      attempt: this.attempt,
      stage,
      part,
      parts,
      backward: this.backward.slice(part * PART_BACKWARD, (part + 1) * PART_BACKWARD),
      sent: sent.slice(part * PART_SENT, (part + 1) * PART_SENT),
      recv: recv.slice(part * PART_RECV, (part + 1) * PART_RECV),
      ...(part === 0 && contrib !== undefined ? { contrib } : {}),
      ...(last ? { losses: losses.slice(part * PART_LOSSES, (part + 1) * PART_LOSSES) } : {}),
    }));
  }
}

// What a swarm peer does with stage checkpoints (docs/resilience.md, "Checkpoints", "Custody", "Tab reload"):
//
// - Saves: after every applied step whose count is a multiple of run.checkpoint.every (local-steps mode: after the
//   outer sync when that step syncs), the runtime reads its state (queued after the update, read-only) and the store
//   writes it in the background; then `checkpoint-saved`. A save still writing when the next is due: the next is
//   skipped (counted). `saveNow()` for exit paths (pagehide, SIGTERM).
// - Restores (`swarm-members.restores`): loads its own checkpoint, checks run, stage, layout and the digest the
//   coordinator named, writes it into the runtime (its error-feedback residual included) and reports the digest.
// - Serves joins from a checkpoint (`joins[].checkpoint`): sends the stored state instead of the live one.
// - Custody (`custody`): the source sends its stored checkpoint to the keeper, which stores it and reports
//   checkpoint-saved. The keeper asks for it with a small `custody-pull` tensor once it admits the source's state
//   (tensor-policy.ts), so the state never arrives before the keeper expects it.
// A peer without a store saves nothing, announces nothing, and reports an error for a restore or custody it is named in.
import type { Transport } from '../net/transport';
import type { IncomingTensor } from '../net/tensor';
import type { ControlMessage, ControlOf } from '../protocol/messages';
import { checkpointOf, type RunConfig } from '../protocol/run-config';
import { isSyncStep } from '../model/outer-optimizer';
import type { CheckpointRef, CheckpointStore, StageCheckpoint } from './checkpoints';
import { CUSTODY_PULL_KIND, dialsFirst, type Links } from './links';
import { localSyncOf } from './local-sync';
import type { StageRuntime } from './stage-runtime';
import { layoutOf, receiveStageState, sendStageState, stateDigest } from './state-transfer';

/** peer-info.checkpoints holds at most this many refs (the schema's bound). */
export const MAX_ANNOUNCED_CHECKPOINTS = 16;
/** Pulls that arrived before their custody message, kept this long. */
const EARLY_PULL_MS = 60_000;

export interface PeerCheckpointsDeps {
  store: CheckpointStore | undefined;
  self: string;
  links: Links;
  /** The keeper side of the tensor policy: admit stage state from `from` while a custody copy is expected. */
  policy: { expectCustody(from: string): void; custodyDone(from: string): void };
  run(): RunConfig | null;
  send(m: ControlMessage): void;
  log(s: string): void;
  linkTimeoutMs: number;
}

export interface CheckpointStats {
  saved: number;
  /** Saves skipped because the previous one was still being written. */
  skipped: number;
  failed: number;
  custodySent: number;
  custodyKept: number;
}

export class PeerCheckpoints {
  readonly stats: CheckpointStats = { saved: 0, skipped: 0, failed: 0, custodySent: 0, custodyKept: 0 };
  private writing: Promise<void> | null = null;
  private runtime: StageRuntime | null = null;
  /** The (run, stage, step) saved last, so an exit save does not write it twice. */
  private last = '';
  /** Local-steps mode: a save due after the outer sync of this step. */
  private afterSync: number | null = null;
  private readonly pulls: { from: string; stage: number; step: number; at: number; t: Transport }[] = [];
  private readonly pullWaiters = new Set<() => void>();
  /** Custody transfers, one at a time (they share links with the step's tensors; never the membership chain). */
  private custody: Promise<void> = Promise.resolve();

  /** The current membership (the last swarm-members), for who dials a custody link. */
  private membership: readonly (readonly string[])[] | null = null;

  constructor(private readonly d: PeerCheckpointsDeps) {}

  setMembership(stages: readonly (readonly string[])[]): void {
    this.membership = stages;
  }

  get enabled(): boolean {
    return this.d.store !== undefined;
  }

  /** Saves `sr`'s stage on its schedule (call once per runtime, right after it is built). */
  attach(sr: StageRuntime): void {
    this.runtime = sr;
    this.afterSync = null;
    if (!this.d.store) return;
    const run = sr.run;
    const every = checkpointOf(run).every;
    const local = localSyncOf(run);
    sr.events.on('applied', ({ step }) => {
      if (this.runtime !== sr || (step + 1) % every !== 0) return;
      // A sync step's state is whole only after the outer sync (the restored run continues after it).
      if (local && isSyncStep(step, local.H, run.steps)) this.afterSync = step;
      else this.saveSoon(sr);
    });
    sr.events.on('synced', ({ step }) => {
      if (this.runtime !== sr || this.afterSync !== step) return;
      this.afterSync = null;
      this.saveSoon(sr);
    });
    void this.d.store.prune(run.runId).catch((e: unknown) => this.d.log(`checkpoints: prune failed: ${String(e)}`));
  }

  /** Starts a save unless one is still being written. The read is queued now (synchronously), the write is not awaited. */
  private saveSoon(sr: StageRuntime): void {
    if (this.writing) {
      this.stats.skipped++;
      this.d.log(`checkpoint after step ${sr.stepsDone} skipped: the previous one is still being written (${this.stats.skipped} skipped)`);
      return;
    }
    const p = this.save(sr);
    this.writing = p;
    void p.finally(() => {
      if (this.writing === p) this.writing = null;
    });
  }

  private async save(sr: StageRuntime): Promise<void> {
    const store = this.d.store;
    if (!store) return;
    try {
      const got = await sr.readCheckpointState(); // queued first: before any later step's work
      if (!got) return;
      const key = `${sr.run.runId}/${sr.stageIndex}/${got.step}`;
      if (key === this.last) return;
      const layout = layoutOf(sr.stage.params);
      const state = { layout, step: got.step, params: got.params, m: got.m, v: got.v, ...(got.outer ? { outer: got.outer } : {}) };
      const ck: StageCheckpoint = { runId: sr.run.runId, stage: sr.stageIndex, savedAt: Date.now(), digest: stateDigest(state), ...state };
      await store.save(ck, checkpointOf(sr.run).keep);
      this.last = key;
      this.stats.saved++;
      this.d.send({ type: 'checkpoint-saved', runId: ck.runId, stage: ck.stage, step: ck.step, digest: ck.digest });
    } catch (e) {
      this.stats.failed++;
      this.d.log(`checkpoint of stage ${sr.stageIndex} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * Saves the stage as it is now (exit paths: pagehide, SIGTERM), after any save being written. Resolves when it is
   * stored (or there is nothing to save). Local-steps mode: not between a sync step's update and its outer sync.
   */
  async saveNow(): Promise<void> {
    const sr = this.runtime;
    if (!this.d.store || !sr) return;
    await this.writing?.catch(() => undefined);
    if (this.afterSync !== null) return;
    const p = this.save(sr);
    this.writing = p;
    await p;
    if (this.writing === p) this.writing = null;
  }

  /** What the store holds, newest first (peer-info.checkpoints), or undefined without a store. */
  async refs(): Promise<CheckpointRef[] | undefined> {
    if (!this.d.store) return undefined;
    try {
      return (await this.d.store.list()).slice(0, MAX_ANNOUNCED_CHECKPOINTS);
    } catch (e) {
      this.d.log(`checkpoints: listing failed: ${String(e)}`);
      return [];
    }
  }

  private async loadOwn(runId: string, stage: number, step: number): Promise<StageCheckpoint> {
    const store = this.d.store;
    if (!store) throw new Error(`no checkpoint store here: cannot provide stage ${stage} at step ${step} (run ${runId})`);
    const ck = await store.load({ runId, stage, step });
    if (!ck) throw new Error(`no checkpoint of stage ${stage} at step ${step} of run ${runId} here (absent or damaged)`);
    return ck;
  }

  /**
   * swarm-members.restores for this peer: loads its own checkpoint into `sr` and returns its digest (for
   * swarm-ready), or undefined when this peer is not named. Throws (reported; the peer does not say ready) when it
   * has none, or it is not the one named.
   */
  async restore(msg: ControlOf<'swarm-members'>, sr: StageRuntime): Promise<string | undefined> {
    const r = msg.restores?.find((x) => x.peer === this.d.self);
    if (!r) return undefined;
    if (r.stage !== sr.stageIndex) throw new Error(`restore of stage ${r.stage} named for this peer of stage ${sr.stageIndex}`);
    const ck = await this.loadOwn(sr.run.runId, r.stage, r.step);
    if (ck.digest !== r.digest)
      throw new Error(`checkpoint of stage ${r.stage} at step ${r.step} has digest ${ck.digest}, the coordinator named ${r.digest}`);
    const layout = layoutOf(sr.stage.params);
    if (ck.layout !== layout) throw new Error(`checkpoint of stage ${r.stage} at step ${r.step} has another layout than this stage`);
    if (sr.localSteps !== (ck.outer !== undefined)) throw new Error(`checkpoint of stage ${r.stage} at step ${r.step} is of another sync mode`);
    await sr.loadState(ck);
    sr.setStepsDone(ck.step);
    await sr.idle();
    this.last = `${ck.runId}/${ck.stage}/${ck.step}`;
    this.afterSync = null;
    this.d.log(`restored stage ${ck.stage} from its checkpoint at step ${ck.step} (digest ${ck.digest})`);
    return ck.digest;
  }

  /** A join from a checkpoint (joins[].checkpoint): sends the stored state of `stage` at `step` to the joiner. */
  async sendStored(t: Transport, runId: string, stage: number, step: number, meta: Record<string, string | number> = {}): Promise<void> {
    const ck = await this.loadOwn(runId, stage, step);
    const outer = ck.outer ? { sync: ck.outer.sync, mom: ck.outer.mom } : undefined;
    await sendStageState(
      t,
      { params: ck.params, m: ck.m, v: ck.v, step: ck.step, layout: ck.layout, ...(outer ? { outer } : {}) },
      { stage, runId, ...meta },
    );
  }

  // ------------------------------------------------------------------------------------------------- custody

  /** A custody message naming this peer (source or keeper): runs in the background, one at a time. */
  onCustody(msg: ControlOf<'custody'>): void {
    const self = this.d.self;
    if (msg.source !== self && msg.keeper !== self) return;
    if (msg.keeper === self) this.d.policy.expectCustody(msg.source); // at once: the link may already be up
    this.custody = this.custody.then(() =>
      (msg.keeper === self ? this.keep(msg) : this.give(msg)).catch((e: unknown) => {
        const why = e instanceof Error ? e.message : String(e);
        this.d.log(`custody of stage ${msg.stage} at step ${msg.step} (${msg.source} -> ${msg.keeper}) failed: ${why}`);
        this.d.send({ type: 'status', state: 'custody-failed', step: msg.step, detail: why.slice(0, 1000) });
      }),
    );
  }

  private async linkTo(peer: string): Promise<Transport> {
    const stages = this.membership;
    if (!stages) throw new Error('no membership yet');
    return this.d.links.link(peer, dialsFirst(stages, this.d.self, peer), this.d.linkTimeoutMs);
  }

  /** Keeper: link to the source, pull, receive, store, report. */
  private async keep(msg: ControlOf<'custody'>): Promise<void> {
    try {
      const store = this.d.store;
      const run = this.d.run();
      if (!store) throw new Error('no checkpoint store here');
      if (!run) throw new Error('no run yet');
      const t = await this.linkTo(msg.source);
      const got = receiveStageState(t, { timeoutMs: this.d.linkTimeoutMs * 4, expectOuter: localSyncOf(run) !== null });
      await t.sendTensor({ kind: CUSTODY_PULL_KIND, dtype: 'u8', shape: [0], data: new Uint8Array(0), meta: { stage: msg.stage, step: msg.step } });
      const s = await got;
      if (s.meta.stage !== msg.stage || s.meta.runId !== run.runId || s.step !== msg.step) {
        throw new Error(`got stage ${String(s.meta.stage)} of run ${String(s.meta.runId)} at step ${s.step}`);
      }
      // A copy for someone else: its residual is the source's own and does not travel (a restored replica starts at 0).
      const outer = s.outer ? { ...s.outer, ef: new Float32Array(s.params.length) } : undefined;
      const ck: StageCheckpoint = {
        runId: run.runId,
        stage: msg.stage,
        step: s.step,
        layout: s.layout,
        digest: s.digest,
        params: s.params,
        m: s.m,
        v: s.v,
        savedAt: Date.now(),
        ...(outer ? { outer } : {}),
      };
      await store.save(ck, checkpointOf(run).keep);
      this.stats.custodyKept++;
      this.d.log(`keeping stage ${msg.stage} at step ${msg.step} from ${msg.source} (digest ${s.digest})`);
      this.d.send({ type: 'checkpoint-saved', runId: ck.runId, stage: ck.stage, step: ck.step, digest: ck.digest });
    } finally {
      this.d.policy.custodyDone(msg.source);
    }
  }

  /** Source: link to the keeper, wait for its pull, send the stored checkpoint. */
  private async give(msg: ControlOf<'custody'>): Promise<void> {
    const run = this.d.run();
    if (!run) throw new Error('no run yet');
    const ck = await this.loadOwn(run.runId, msg.stage, msg.step); // fail early (and say so) when there is none
    await this.linkTo(msg.keeper);
    const pulled = await this.pulled(msg.keeper, msg.stage, msg.step, this.d.linkTimeoutMs * 2);
    const outer = ck.outer ? { sync: ck.outer.sync, mom: ck.outer.mom } : undefined;
    await sendStageState(
      this.d.links.get(msg.keeper) ?? pulled,
      { params: ck.params, m: ck.m, v: ck.v, step: ck.step, layout: ck.layout, ...(outer ? { outer } : {}) },
      { stage: msg.stage, runId: run.runId },
    );
    this.stats.custodySent++;
  }

  /** A custody-pull arrived (any member may send one: it does nothing unless a custody message matches it). */
  onPull(from: string, x: IncomingTensor, t: Transport | undefined): void {
    const { stage, step } = x.meta;
    if (typeof stage !== 'number' || typeof step !== 'number' || !t) return;
    const now = Date.now();
    while (this.pulls.length > 0 && (this.pulls.length >= 16 || now - this.pulls[0].at > EARLY_PULL_MS)) this.pulls.shift();
    this.pulls.push({ from, stage, step, at: now, t });
    for (const w of [...this.pullWaiters]) w();
  }

  private pulled(from: string, stage: number, step: number, timeoutMs: number): Promise<Transport> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const i = this.pulls.findIndex((p) => p.from === from && p.stage === stage && p.step === step);
        if (i < 0) return false;
        const [p] = this.pulls.splice(i, 1);
        this.pullWaiters.delete(check);
        clearTimeout(timer);
        resolve(p.t);
        return true;
      };
      const timer = setTimeout(() => {
        this.pullWaiters.delete(check);
        reject(new Error(`${from} did not ask for the copy within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.pullWaiters.add(check);
    });
  }
}

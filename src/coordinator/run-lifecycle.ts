// A coordinator's run from start to summary, for the CLI (`tabswarm coordinator`, `tabswarm demo`) and the
// coordinator page alike: the Coordinator on its own signaling connection, one RunView of the run fed by the
// coordinator's events and the messages it receives, the run's step reports broadcast to the room, weight
// collection by an observer peer after the last step, and the run's summary. Environment-neutral: the WebSocket
// constructor (Node) and the RTCPeerConnection factory (weight collection) come from the caller.
import type { WebSocketConstructor } from '../net/signaling-client';
import { ephemeralIdentity, type Identity } from '../net/identity';
import type { Unsubscribe } from '../net/emitter';
import type { RtcFactory } from '../net/rtc-session';
import { connectSwarm, type SwarmSignaling } from '../protocol/control-codec';
import type { ControlMessage } from '../protocol/messages';
import type { RunConfig } from '../protocol/run-config';
import { Coordinator, type ControlPlane, type StepReport } from './coordinator';
import { WireMeter } from '../net/wire-meter';
import { wireBytesOf } from '../protocol/wire-categories';
import { finalRunSummary, runSummary, type FinalRunSummary, type RunSummary } from './run-view';
import { RunViewStore } from './run-view-store';
import { broadcastStepReports } from './step-report-broadcast';
import { collectWeights } from './weight-collector';
import { LedgerKeeper } from './ledger-keeper';
import { attachRunSaver } from './run-saver';
import type { SavedRun } from './run-state';

export interface CoordinatorRunOptions {
  /** Signaling server URL and room. */
  url: string;
  room: string;
  run: RunConfig;
  /** Peers that must have joined (every stage one at least) before step 0. */
  minPeers: number;
  /** Defaults to globalThis.WebSocket (browsers); Node passes `ws`. */
  WebSocket?: WebSocketConstructor;
  /** The coordinator's key pair: the room is bound to its fingerprint (default: a fresh ephemeral one). */
  identity?: Identity;
  /** A join token peers must present (its hash goes to the server; default: none). */
  token?: string;
  /**
   * Hold the coordinator's room-wide `shutdown` at the end of the run until release(): the peers stay up, idle
   * between steps, so collectWeights() can copy their stages.
   */
  holdShutdown?: boolean;
  /** Connect now, start on begin(): peers waiting in the room announce themselves and are assigned meanwhile. */
  hold?: boolean;
  /** The view to feed (default: a new one). */
  view?: RunViewStore;
  log?: (s: string) => void;
  /** A step (or a membership's ready) without progress for this long is re-run (default 120 s). */
  stepTimeoutMs?: number;
  readyTimeoutMs?: number;
  /** A paused run (a stage lost every replica) waits this long for a copy before it fails (default 600 s). */
  restoreWaitMs?: number;
  /** Stragglers and frozen peers (src/coordinator/deadlines.ts, liveness.ts): deadline floor and ping timeout. */
  mbDeadlineMinMs?: number;
  pingTimeoutMs?: number;
  /** Each step's signed ledger export (the CLI's --ledger file, the page's IndexedDB); awaited in step order. */
  onLedger?: (text: string) => void | Promise<void>;
  /** Resume this saved run (src/coordinator/run-state.ts): re-adopt its swarm, its reports and ledger continue. */
  resume?: SavedRun;
  /** The saved run's text after every completed step (the CLI's --state file, the page's IndexedDB). */
  onRunState?: (text: string) => void | Promise<void>;
  /** Split the model by the first minPeers peers' memory budgets (Coordinator planStages; `run.stages` is replaced). */
  planStages?: boolean;
}

export class CoordinatorRun {
  readonly coordinator: Coordinator;
  readonly view: RunViewStore;
  /** The run's contribution ledger, signed by this coordinator's key (docs/trust.md "Ledger"). */
  readonly ledger: LedgerKeeper;
  private readonly held: ControlMessage[] = [];
  private released: boolean;
  private readonly offs: Unsubscribe[] = [];
  private readonly done: Promise<StepReport[]>;

  /** Connects to the signaling server as the room's coordinator and starts the run (step 0 waits for peers). */
  static async start(opts: CoordinatorRunOptions): Promise<CoordinatorRun> {
    const wire = new WireMeter();
    const sig = await connectSwarm(opts.url, {
      room: opts.room,
      role: 'coordinator',
      identity: opts.identity,
      token: opts.token,
      WebSocket: opts.WebSocket,
      meter: wire,
      log: opts.log,
    });
    return new CoordinatorRun(sig, opts, wire);
  }

  private constructor(
    readonly sig: SwarmSignaling,
    private readonly opts: CoordinatorRunOptions,
    /** The coordinator's own bytes (its signaling connection): control, counted into the run's wire figures. */
    private readonly wire: WireMeter,
  ) {
    this.released = !opts.holdShutdown;
    this.view = opts.view ?? new RunViewStore();
    const cp: ControlPlane = {
      get peerId() {
        return sig.peerId;
      },
      on: sig.on.bind(sig),
      keyOf: (peerId) => sig.keyOf(peerId),
      reachable: (peerId) => sig.reachable(peerId),
      sendControl: (msg, to) => {
        if (!this.released && msg.type === 'shutdown' && (to === undefined || to === '*')) {
          this.held.push(msg);
          return;
        }
        if (sig.isUsable) sig.sendControl(msg, to); // queued while the signaling connection reconnects
      },
    };
    // The view subscribes in the same tick as the coordinator: peers waiting in the room announce themselves as
    // soon as a coordinator arrives, and no announcement may be missed.
    this.coordinator = new Coordinator(cp, {
      run: opts.run,
      minPeers: opts.minPeers,
      log: opts.log,
      stepTimeoutMs: opts.stepTimeoutMs ?? 120_000,
      readyTimeoutMs: opts.readyTimeoutMs ?? 120_000,
      restoreWaitMs: opts.restoreWaitMs,
      mbDeadlineMinMs: opts.mbDeadlineMinMs,
      pingTimeoutMs: opts.pingTimeoutMs,
      resume: opts.resume,
      hold: opts.hold,
      planStages: opts.planStages,
    });
    this.ledger = new LedgerKeeper({
      events: this.coordinator.events,
      run: opts.run,
      identity: sig.identity,
      keyOf: (id) => sig.keyOf(id),
      members: () => this.coordinator.members(),
      send: (msg, to) => cp.sendControl(msg, to),
      onRows: (rows) => this.view.dispatch({ kind: 'ledger', rows }),
      onExport: opts.onLedger,
      log: opts.log,
      resume: opts.resume?.ledger,
    });
    this.offs.push(() => this.ledger.close());
    this.offs.push(...this.saveAndReadopt(opts));
    this.feedView();
    this.offs.push(broadcastStepReports(this.coordinator, sig, () => this.view.view));
    this.done = this.coordinator.finished().then(
      (reports) => {
        this.view.dispatch({ kind: 'finished' });
        return reports;
      },
      (e: unknown) => {
        this.view.dispatch({ kind: 'failed', error: e instanceof Error ? e.message : String(e) });
        throw e;
      },
    );
    this.done.catch(() => undefined);
  }

  /** Saves the run after every step; a coordinator whose signaling connection came back asks its peers to re-announce. */
  private saveAndReadopt(opts: CoordinatorRunOptions): Unsubscribe[] {
    const offs = [this.sig.on('reconnected', () => this.coordinator.reannounce())];
    const write = opts.onRunState;
    if (write) {
      const saver = attachRunSaver({
        coordinator: this.coordinator,
        room: opts.room,
        fingerprint: this.sig.identity.fingerprint,
        ledger: () => this.ledger.latest(),
        write,
        log: opts.log,
      });
      this.savedRun = saver.flushed;
      offs.push(saver.off);
    }
    return offs;
  }

  /** Ids of this coordinator's own weights observers (collectWeights): room members the view leaves out. */
  private readonly observers = new Set<string>();
  /** Resolves when every saved run so far is written. */
  savedRun: () => Promise<void> = () => Promise.resolve();

  /** The run (with planStages, its planned stages once the first peers have joined). */
  get run(): RunConfig {
    return this.coordinator.run;
  }

  private feedView(): void {
    const v = this.view;
    const c = this.coordinator.events;
    v.dispatch({ kind: 'started', run: this.run });
    for (const report of this.opts.resume?.reports ?? []) v.dispatch({ kind: 'step', report }); // the loss curve so far
    // The weights observer (collectWeights) is a room member of the coordinator's own, not a contributor: not shown.
    const contributor = (peerId: string, role: string): boolean => role === 'peer' && !this.observers.has(peerId);
    for (const [peerId, role] of this.sig.peers) if (contributor(peerId, role)) v.dispatch({ kind: 'peer-joined', peerId });
    this.offs.push(
      this.sig.on('peer-joined', ({ peerId, role }) => contributor(peerId, role) && v.dispatch({ kind: 'peer-joined', peerId })),
      this.sig.on('peer-left', ({ peerId }) => v.dispatch({ kind: 'peer-left', peerId })),
      this.sig.on('control', ({ from, msg }) => v.dispatch({ kind: 'control', from, msg })),
      // Planned before anyone is assigned: the view starts over with the planned stages.
      c.on('plan', (e) => e.ok && v.dispatch({ kind: 'started', run: this.run })),
      c.on('assigned', (e) => v.dispatch({ kind: 'assigned', ...e })),
      c.on('membership', (e) => v.dispatch({ kind: 'membership', ...e })),
      c.on('vanished', (e) => v.dispatch({ kind: 'vanished', ...e })),
      c.on('moved', (e) => v.dispatch({ kind: 'moved', ...e })),
      c.on('frozen', (e) => v.dispatch({ kind: 'frozen', peerId: e.peerId, reason: e.reason })),
      c.on('restart', (e) => v.dispatch({ kind: 'restart', ...e })),
      c.on('paused', (e) => v.dispatch({ kind: 'paused', ...e })),
      c.on('resumed', (e) => v.dispatch({ kind: 'resumed', ...e })),
      c.on('step', (report) => {
        v.dispatch({ kind: 'wire', bytes: wireBytesOf(this.wire.take()) });
        v.dispatch({ kind: 'step', report });
      }),
    );
  }

  /** Starts a run created with `hold`. */
  begin(): void {
    this.coordinator.begin();
  }

  /** Ends the run after the step in progress (before step 0: at once); finished() then resolves as for a full run. */
  stop(reason = 'stopped by the coordinator'): void {
    this.coordinator.stop(reason);
  }

  /** Every step's report once the run's steps are done; rejects if the run cannot go on. */
  finished(): Promise<StepReport[]> {
    return this.done;
  }

  /**
   * The trained parameters (by gpt2ParamSpecs name), copied from one replica per stage by an observer peer. Call
   * after finished() and before release() (holdShutdown: the peers must still be up).
   */
  collectWeights(o: { rtcFactory: RtcFactory; timeoutMs?: number; log?: (s: string) => void }): Promise<Map<string, Float32Array>> {
    const { url, room, WebSocket, token } = this.opts;
    const coordinator = this.sig.coordinatorFingerprint;
    return collectWeights({
      // The observer is a peer of its own, with an ephemeral key (made first, so the view knows its id in time).
      connect: async () => {
        const identity = await ephemeralIdentity();
        this.observers.add(identity.id);
        return connectSwarm(url, { room, role: 'peer', coordinator, token, WebSocket, identity });
      },
      control: this.sig,
      rtcFactory: o.rtcFactory,
      members: this.coordinator.members(),
      step: this.coordinator.step,
      timeoutMs: o.timeoutMs,
      log: o.log,
    });
  }

  /** The run's one-line summary (steps, peers, stages, first and last loss, tokens/s). */
  summary(): RunSummary {
    return runSummary(this.view.view);
  }

  /** The run's final JSON summary: summary()'s keys, then `val_loss` (null: not evaluated) and `wire_bytes_per_token`. */
  finalSummary(valLoss: number | null): FinalRunSummary {
    return finalRunSummary(this.view.view, valLoss);
  }

  /** Sends the run's final `shutdown` (held back with holdShutdown so the weights can be collected first). */
  release(): void {
    if (this.released) return;
    this.released = true;
    const msgs = this.held.length ? this.held.splice(0) : [{ type: 'shutdown', reason: `run ${this.run.runId} over` } as const];
    for (const m of msgs) if (this.sig.isUsable) this.sig.sendControl(m, '*');
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
    this.coordinator.close();
    this.sig.close();
  }
}

// Peer-to-peer links on top of a signaling client: dial a peer with timeout and retry, accept incoming links,
// and keep track of open transports. Works with any RtcFactory (browser or node-datachannel).
//
// Direction is the caller's choice: if two peers dial each other at once they get two independent links. The
// swarm should pick one dialer per pair (e.g. the lower pipeline stage dials the next one).

import { Emitter, type Unsubscribe } from './emitter';
import type { TransportOptionsInput } from './framed-transport';
import { Inbox } from './inbox';
import { NatTraversalError } from './nat-failure';
import { framedAdopter, LinkAuthError, RtcSession, type RtcFactory } from './rtc-session';
import type { SignalEvent, SignalingLink } from './signaling-client';
import { sleep, TimeoutError, withTimeout } from './timers';
import type { Transport } from './transport';

export interface PeerNetworkOptions {
  /** Per attempt. The notes saw node-datachannel connects of ~1 s under load, so stay well above that. */
  connectTimeoutMs?: number;
  /** Extra attempts after the first fails (intermittent libdatachannel handshake failures). */
  retries?: number;
  /** Delay before retry n is retryDelayMs * 2^(n-1). */
  retryDelayMs?: number;
  transport?: TransportOptionsInput;
  /**
   * Decide whether to answer an incoming offer (and adopt the link once open); default accepts every peer of the
   * room. The swarm sets it to its current membership (setAccept).
   */
  accept?: (peerId: string) => boolean;
}

export class ConnectError extends Error {
  override name = 'ConnectError';
  constructor(
    readonly peerId: string,
    readonly attempts: string[],
  ) {
    super(`could not connect to ${peerId} after ${attempts.length} attempt(s): ${attempts.join(' | ')}`);
  }
}

export type PeerNetworkEvents = {
  'attempt-failed': { peerId: string; attempt: number; error: string };
  /** An incoming link refused: by the accept policy, or because its offer's auth failed (LinkAuthError). */
  refused: { peerId: string; reason: string };
  /**
   * ICE never connected although the offer and answer were exchanged (nat-failure.ts): not retried. The dialer's
   * connect() rejects with the same error; an answerer learns it only here.
   */
  'nat-failed': { peerId: string; role: 'dialer' | 'answerer'; error: NatTraversalError };
  /** A link opened over this candidate pair (types: host, srflx, prflx, relay; '?' where the stats do not say). */
  linked: { peerId: string; local: string; remote: string };
};

/** The selected candidate pair's types from getStats (browsers: the transport's pair; node-datachannel: its one pair). */
async function selectedPair(pc: RTCPeerConnection): Promise<{ local: string; remote: string }> {
  const stats = [...(await pc.getStats()).values()] as { id: string; type: string; [k: string]: unknown }[];
  const byId = new Map(stats.map((x) => [x.id, x]));
  const transport = stats.find((x) => x.type === 'transport' && typeof x.selectedCandidatePairId === 'string');
  const pair =
    (transport && byId.get(String(transport.selectedCandidatePairId))) ??
    stats.find((x) => x.type === 'candidate-pair' && x.nominated === true && x.state === 'succeeded');
  const typeOf = (id: unknown) => String(byId.get(String(id))?.candidateType ?? '?');
  return { local: typeOf(pair?.localCandidateId), remote: typeOf(pair?.remoteCandidateId) };
}

function randomId(): string {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('');
}

export class PeerNetwork {
  readonly events = new Emitter<PeerNetworkEvents>();
  private readonly sessions = new Map<string, RtcSession>(); // key: peerId/connId, attempts not yet open
  private readonly open = new Set<Transport>();
  private readonly incoming = new Inbox<Transport>();
  private readonly offs: Unsubscribe[] = [];
  private readonly opts: Required<Omit<PeerNetworkOptions, 'transport' | 'accept'>> & Pick<PeerNetworkOptions, 'transport'>;
  private accept: (peerId: string) => boolean;
  private closed = false;

  constructor(
    readonly signaling: SignalingLink,
    private readonly factory: RtcFactory,
    options: PeerNetworkOptions = {},
  ) {
    const { accept, ...rest } = options;
    this.opts = { connectTimeoutMs: 10_000, retries: 2, retryDelayMs: 200, ...rest };
    this.accept = accept ?? (() => true);
    this.offs.push(
      signaling.on('signal', (ev) => this.onSignal(ev)),
      signaling.on('peer-left', ({ peerId }) => this.abortPeer(peerId, 'peer left the room')),
      // The server keeps one connection per key, so a member that joins while we hold a link to its id is a new
      // incarnation (a restarted process, a reloaded tab): the old link leads to nobody, though its channel may look
      // open until its heartbeat fails (a SIGKILLed process sends no close over UDP). Close it, so a dial reaches
      // the new one instead of reusing a dead link.
      signaling.on('peer-joined', ({ peerId }) => this.dropStale(peerId)),
    );
  }

  get peerId(): string {
    return this.signaling.peerId;
  }

  /** Open transports (both directions). */
  get transports(): Transport[] {
    return [...this.open];
  }

  /** Dials `peerId`; resolves with an open transport or rejects with ConnectError after every retry failed. */
  async connect(peerId: string): Promise<Transport> {
    const failures: string[] = [];
    for (let attempt = 0; attempt <= this.opts.retries; attempt++) {
      if (this.closed) break;
      if (!this.signaling.peers.has(peerId)) {
        // Its peer-joined may still be in flight (e.g. we learnt its id elsewhere); give it one timeout to appear.
        try {
          await this.signaling.waitForPeer(peerId, this.opts.connectTimeoutMs);
        } catch {
          failures.push(`${peerId} is not in room ${this.signaling.room}`);
          break;
        }
      }
      if (attempt > 0) await sleep(this.opts.retryDelayMs * 2 ** (attempt - 1));
      const session = this.newSession(peerId, randomId(), 'dialer');
      try {
        await session.start();
        const transport = await withTimeout(session.opened(), this.opts.connectTimeoutMs, `connect to ${peerId}`);
        this.adopt(session, transport);
        return transport;
      } catch (err) {
        const nat = this.natFailureOf(session, err);
        const msg = nat ? nat.message : err instanceof TimeoutError ? err.message : `${(err as Error)?.message ?? err}`;
        failures.push(msg);
        this.events.emit('attempt-failed', { peerId, attempt, error: msg });
        this.dropSession(session, msg, true);
        if (nat) {
          // No pair through the NATs: a retry would fail the same way, only later (docs/deployment.md "NAT traversal").
          this.events.emit('nat-failed', { peerId, role: 'dialer', error: nat });
          throw nat;
        }
        // It left the room while we dialed: a retry would only wait a whole timeout for it to come back.
        if (!this.signaling.peers.has(peerId)) break;
      }
    }
    throw new ConnectError(peerId, failures);
  }

  /** Replaces the policy for incoming links: offers from peers it returns false for are refused. */
  setAccept(accept: (peerId: string) => boolean): void {
    this.accept = accept;
  }

  /** Incoming links, once open. Links that open before anyone subscribed are delivered to the first subscriber. */
  onConnection(handler: (t: Transport) => void): Unsubscribe {
    return this.incoming.subscribe(handler);
  }

  /** Closes every link and pending attempt and detaches from the signaling client (which stays open). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.offs) off();
    for (const s of [...this.sessions.values()]) this.dropSession(s, 'network closed', true);
    for (const t of [...this.open]) t.close();
    this.open.clear();
    this.incoming.clear();
  }

  /** The attempt's failure as a NAT traversal failure (ICE failed, or timed out still checking), else null. */
  private natFailureOf(session: RtcSession, err: unknown): NatTraversalError | null {
    if (err instanceof NatTraversalError) return err;
    if (err instanceof TimeoutError) return session.natFailure(`no ICE connection within ${this.opts.connectTimeoutMs} ms`);
    return null;
  }

  private newSession(peerId: string, connId: string, role: 'dialer' | 'answerer'): RtcSession {
    const session = new RtcSession(
      peerId,
      connId,
      role,
      this.factory,
      (data) => {
        // While the signaling server is away the signal waits in its queue: the negotiation resumes after the rejoin.
        if (!this.signaling.isUsable) return;
        try {
          this.signaling.sendSignal(peerId, connId, data);
        } catch {
          // Closed for good or its queue is full: this attempt times out and is retried or fails as usual.
        }
      },
      framedAdopter(this.opts.transport ?? {}),
      { identity: this.signaling.identity, remoteKey: () => this.signaling.keyOf(peerId) },
    );
    this.sessions.set(`${peerId}/${connId}`, session);
    return session;
  }

  private adopt(session: RtcSession, transport: Transport): void {
    this.sessions.delete(`${session.remotePeerId}/${session.connId}`);
    session.release();
    selectedPair(session.pc).then(
      (pair) => this.events.emit('linked', { peerId: session.remotePeerId, ...pair }),
      () => undefined, // stats are a diagnostic
    );
    this.open.add(transport);
    transport.onClose(() => this.open.delete(transport));
  }

  private dropSession(session: RtcSession, reason: string, tellPeer: boolean): void {
    const key = `${session.remotePeerId}/${session.connId}`;
    if (this.sessions.get(key) !== session) return;
    this.sessions.delete(key);
    if (tellPeer && this.signaling.isUsable && this.signaling.peers.has(session.remotePeerId)) {
      try {
        this.signaling.sendSignal(session.remotePeerId, session.connId, { kind: 'abort', reason: reason.slice(0, 200) });
      } catch {
        // Signaling went away; the peer's own timeout frees its half.
      }
    }
    session.close(reason);
  }

  private dropStale(peerId: string): void {
    this.abortPeer(peerId, 'the peer joined again');
    for (const t of [...this.open]) if (t.peerId === peerId) t.close();
  }

  private abortPeer(peerId: string, reason: string): void {
    for (const s of [...this.sessions.values()]) if (s.remotePeerId === peerId) this.dropSession(s, reason, false);
  }

  private onSignal({ from, connId, data }: SignalEvent): void {
    if (this.closed) return;
    const key = `${from}/${connId}`;
    let session = this.sessions.get(key);
    if (!session) {
      if (data.kind !== 'offer') return; // late signal of an attempt that is gone
      if (!this.accept(from)) {
        this.events.emit('refused', { peerId: from, reason: 'not accepted' });
        this.signaling.sendSignal(from, connId, { kind: 'abort', reason: 'not accepted' });
        return;
      }
      const s = this.newSession(from, connId, 'answerer');
      session = s;
      withTimeout(s.opened(), this.opts.connectTimeoutMs, `incoming link from ${from}`).then(
        (transport) => {
          // The policy may have changed while the link was set up (e.g. the peer was evicted meanwhile).
          if (!this.accept(from)) {
            this.events.emit('refused', { peerId: from, reason: 'not accepted once open' });
            this.dropSession(s, 'not accepted', true);
            transport.close();
            return;
          }
          this.adopt(s, transport);
          this.incoming.deliver(transport);
        },
        (err: unknown) => {
          const nat = this.natFailureOf(s, err);
          this.dropSession(s, nat?.message ?? (err as Error)?.message ?? String(err), true);
          if (nat) this.events.emit('nat-failed', { peerId: from, role: 'answerer', error: nat });
        },
      );
    }
    const s = session;
    s.handle(data).catch((err: unknown) => {
      if (err instanceof LinkAuthError) this.events.emit('refused', { peerId: from, reason: err.message });
      this.dropSession(s, `signal ${data.kind} failed: ${(err as Error)?.message ?? err}`, true);
    });
  }
}

// One WebRTC connection attempt (either side): SDP exchange over the signaling client, with the ICE candidate
// discipline the loopback notes call for:
//  - the dialer holds its own candidates back until the answer is applied (prevents node-datachannel's
//    intermittent "Got a remote candidate without ICE transport" / DTLS failures);
//  - the answerer holds its candidates until its answer is sent;
//  - remote candidates that arrive before the remote description is applied are queued, not dropped.
// The offer and the answer are signed over the DTLS fingerprint of their SDP (dtls-auth.ts) and checked against the
// sender's key from the room's roster before they are applied: a link whose auth fails is never set up.

import { signDtls, verifyDtls } from './dtls-auth';
import { FramedTransport, type TransportOptionsInput } from './framed-transport';
import type { Identity } from './identity';
import { candidateType, NatTraversalError, noCandidates, type CandidateCounts } from './nat-failure';
import { RtcRawChannel } from './rtc-channel';
import type { SignalData } from './signaling-protocol';

export type RtcFactory = () => RTCPeerConnection;

/** Label of the single data channel every link uses. */
export const CHANNEL_LABEL = 'tabswarm/1';

type CandidateSignal = Extract<SignalData, { kind: 'candidate' }>;

/** What a session hands out once its channel is built: a FramedTransport for the swarm, the bare channel for benches. */
export type Adopt<T extends { close(): void }> = (raw: RtcRawChannel, remotePeerId: string) => T;

/** Who this side is (signs its SDP) and the key the other side must have signed with. */
export interface SessionAuth {
  identity: Identity;
  /** The remote member's public key now (from the signaling roster); undefined if it is not a member. */
  remoteKey(): string | undefined;
}

/** The other side's offer or answer was not signed by its key over its DTLS fingerprint. */
export class LinkAuthError extends Error {
  override name = 'LinkAuthError';
}

export const framedAdopter =
  (options: TransportOptionsInput): Adopt<FramedTransport> =>
  (raw, remotePeerId) =>
    new FramedTransport(remotePeerId, raw, options);

export class RtcSession<T extends { close(): void } = FramedTransport> {
  readonly pc: RTCPeerConnection;
  private raw: RtcRawChannel | null = null;
  transport: T | null = null;
  private localHeld: CandidateSignal[] | null = []; // null once released
  private remoteQueue: RTCIceCandidateInit[] | null = []; // null once the remote description is set
  /** Set by close() and by release(): from then on this session neither signals nor owns the connection. */
  private finished = false;
  private readonly channelReady: Promise<RtcRawChannel>;
  private resolveChannel!: (raw: RtcRawChannel) => void;
  /** ICE bookkeeping for a NAT traversal failure's message (nat-failure.ts): candidates offered on each side. */
  readonly localCandidates: CandidateCounts = noCandidates();
  readonly remoteCandidates: CandidateCounts = noCandidates();
  private remoteDescribed = false;
  private iceConnected = false;
  /** Rejects with a NatTraversalError when ICE reports 'failed' before it ever connected (opened() races it). */
  private readonly iceFailed: Promise<never>;

  constructor(
    readonly remotePeerId: string,
    readonly connId: string,
    readonly role: 'dialer' | 'answerer',
    factory: RtcFactory,
    private readonly signal: (data: SignalData) => void,
    private readonly wrap: Adopt<T>,
    private readonly auth: SessionAuth,
  ) {
    this.channelReady = new Promise((resolve) => {
      this.resolveChannel = resolve;
    });
    this.pc = factory();
    this.iceFailed = new Promise<never>((_, reject) => {
      this.pc.addEventListener('iceconnectionstatechange', () => {
        const state = this.pc.iceConnectionState;
        if (state === 'connected' || state === 'completed') this.iceConnected = true;
        if (state === 'failed' && !this.iceConnected) reject(this.natFailure('ICE failed') ?? new Error('ICE failed'));
      });
    });
    this.iceFailed.catch(() => undefined);
    this.pc.onicecandidate = (ev) => {
      const c = ev.candidate;
      if (!c || !c.candidate || this.finished) return; // end-of-candidates needs no message
      const type = candidateType(c.candidate);
      if (type) this.localCandidates[type]++;
      const msg: CandidateSignal = { kind: 'candidate', candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null };
      if (this.localHeld) this.localHeld.push(msg);
      else this.signal(msg);
    };
    if (role === 'dialer') {
      this.adopt(this.pc.createDataChannel(CHANNEL_LABEL, { ordered: true }));
    } else {
      this.pc.ondatachannel = (ev) => {
        if (ev.channel.label === CHANNEL_LABEL && !this.raw) this.adopt(ev.channel);
        else ev.channel.close();
      };
    }
  }

  /** Dialer: create and send the offer. */
  async start(): Promise<void> {
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    if (this.finished) return;
    const sdp = this.pc.localDescription?.sdp ?? offer.sdp ?? '';
    const auth = await signDtls(this.auth.identity, this.connId, this.remotePeerId, sdp);
    if (this.finished) return;
    this.signal({ kind: 'offer', sdp, auth });
  }

  /** Throws LinkAuthError unless `auth` is the remote member's signature over this attempt and `sdp`. */
  private async checkAuth(kind: string, sdp: string, auth: string): Promise<void> {
    const ok = await verifyDtls(this.auth.remoteKey(), auth, this.connId, this.remotePeerId, this.auth.identity.id, sdp);
    if (!ok) throw new LinkAuthError(`${kind} from ${this.remotePeerId} is not signed by its key over its DTLS fingerprint`);
  }

  /** Feeds one signal addressed to this attempt. */
  async handle(data: SignalData): Promise<void> {
    if (this.finished) return;
    switch (data.kind) {
      case 'offer': {
        if (this.role !== 'answerer') throw new Error('offer sent to the dialing side');
        await this.checkAuth('offer', data.sdp, data.auth);
        if (this.finished) return;
        await this.pc.setRemoteDescription({ type: 'offer', sdp: data.sdp });
        this.remoteDescribed = true;
        await this.flushRemote();
        const answer = await this.pc.createAnswer();
        await this.pc.setLocalDescription(answer);
        if (this.finished) return;
        const sdp = this.pc.localDescription?.sdp ?? answer.sdp ?? '';
        const auth = await signDtls(this.auth.identity, this.connId, this.remotePeerId, sdp);
        if (this.finished) return;
        this.signal({ kind: 'answer', sdp, auth });
        this.releaseLocal();
        return;
      }
      case 'answer': {
        if (this.role !== 'dialer') throw new Error('answer sent to the answering side');
        await this.checkAuth('answer', data.sdp, data.auth);
        if (this.finished) return;
        await this.pc.setRemoteDescription({ type: 'answer', sdp: data.sdp });
        this.remoteDescribed = true;
        this.releaseLocal();
        await this.flushRemote();
        return;
      }
      case 'candidate': {
        const init: RTCIceCandidateInit = { candidate: data.candidate, sdpMid: data.sdpMid, sdpMLineIndex: data.sdpMLineIndex };
        const type = candidateType(data.candidate);
        if (type) this.remoteCandidates[type]++;
        if (this.remoteQueue) this.remoteQueue.push(init);
        else await this.pc.addIceCandidate(init);
        return;
      }
      case 'abort':
        this.close(`the other side abandoned the attempt: ${data.reason ?? 'no reason given'}`);
        return;
    }
  }

  /** Resolves with the open transport; rejects if the channel closes first. */
  async opened(): Promise<T> {
    const raw = await Promise.race([this.channelReady, this.iceFailed]);
    await Promise.race([raw.whenOpen(), this.iceFailed]);
    if (!this.transport || this.finished) throw new Error('session closed');
    return this.transport;
  }

  /**
   * The attempt as a NAT traversal failure, if it is one: both descriptions were exchanged (signaling worked) and
   * ICE never connected. null otherwise (an attempt whose answer never came, a DTLS or SCTP failure after ICE).
   */
  natFailure(detail: string): NatTraversalError | null {
    if (!this.remoteDescribed || this.iceConnected) return null;
    const state = this.pc.iceConnectionState;
    if (state === 'connected' || state === 'completed') return null;
    return new NatTraversalError(this.auth.identity.id, this.remotePeerId, { ...this.localCandidates }, { ...this.remoteCandidates }, detail);
  }

  /** Tears the attempt down (no-op for the transport once it has been handed out and is open). */
  close(reason = 'closed locally'): void {
    if (this.finished) return;
    this.finished = true;
    // An attempt that never opened is torn down with its real reason, so opened() (and the dialer's ConnectError)
    // says why; an open transport says goodbye to its peer first.
    if (this.transport && this.raw?.isOpen) this.transport.close();
    else {
      this.raw?.close(reason);
      this.pc.close();
    }
  }

  /** Detach: the attempt succeeded and the transport now owns the peer connection (closing it closes the pc). */
  release(): void {
    this.finished = true;
  }

  private adopt(dc: RTCDataChannel): void {
    // Raw channel and transport are built synchronously, before any await: no message can miss its handler.
    this.raw = new RtcRawChannel(dc, this.pc);
    this.transport = this.wrap(this.raw, this.remotePeerId);
    this.resolveChannel(this.raw);
  }

  private releaseLocal(): void {
    const held = this.localHeld ?? [];
    this.localHeld = null;
    for (const c of held) this.signal(c);
  }

  private async flushRemote(): Promise<void> {
    const queued = this.remoteQueue ?? [];
    this.remoteQueue = null;
    for (const c of queued) await this.pc.addIceCandidate(c);
  }
}

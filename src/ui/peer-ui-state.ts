// The contributor page's one state (docs/deployment.md "Pages"): what the SwarmPeer is doing, what the user asked
// (pause, leave) and the signaling connection, folded into the contract's vocabulary, with one line saying what it
// means and, where the user has to act, what to do. Pure, so the page only feeds it.
import type { SwarmPeerState } from '../swarm/peer';

export const UI_STATES = [
  'idle',
  'joining',
  'syncing',
  'training',
  'validating',
  'paused',
  'reconnecting',
  'waiting-coordinator',
  'left',
  'error',
] as const;
export type UiState = (typeof UI_STATES)[number];

export interface UiInputs {
  /** The SwarmPeer's state; null before a join started (or after the user left). */
  peer: SwarmPeerState | 'starting' | null;
  /** What the user did last. */
  intent: 'none' | 'join' | 'pause' | 'leave';
  /** The signaling connection is re-connecting. */
  reconnecting: boolean;
  /** The coordinator asked this tab to validate and it has not started the next step yet. */
  validating: boolean;
  /** A join or the peer failed. */
  error: boolean;
}

export function uiState(i: UiInputs): UiState {
  if (i.error) return 'error';
  if (i.intent === 'pause') return 'paused';
  if (i.intent === 'leave') return 'left';
  if (i.intent === 'none' || i.peer === null) return 'idle';
  if (i.reconnecting) return 'reconnecting';
  switch (i.peer) {
    case 'starting':
    case 'benchmarking':
    case 'joining':
    case 'assigned':
      return 'joining';
    case 'linking':
    case 'ready':
      return 'syncing';
    case 'training':
      return i.validating ? 'validating' : 'training';
    case 'waiting-coordinator':
      return 'waiting-coordinator';
    case 'error':
      return 'error';
    case 'finished':
    case 'closed':
      return 'left';
  }
}

/** One line per state: what is going on, and what to do where the user can do something. */
export function uiStateLine(s: UiState, o: { finished?: boolean; waitingLeftMs?: number | null } = {}): string {
  switch (s) {
    case 'idle':
      return 'Not in a swarm. Choose a run and press Join.';
    case 'joining':
      return 'Joining: opening the GPU, saying hello to the coordinator, waiting for a stage.';
    case 'syncing':
      return 'Syncing: linking up with the neighbouring stages and copying this stage’s weights.';
    case 'training':
      return 'Training: this tab computes its stage of every step.';
    case 'validating':
      return 'Validating: recomputing another peer’s work for the ledger.';
    case 'paused':
      return 'Paused: this tab left the swarm; its key and checkpoints are kept. Resume rejoins the run.';
    case 'reconnecting':
      return 'Reconnecting to the signaling server (the network dropped). Nothing to do: it retries by itself.';
    case 'waiting-coordinator': {
      const left = o.waitingLeftMs === null || o.waitingLeftMs === undefined ? '' : ` (${Math.max(0, Math.ceil(o.waitingLeftMs / 1000))} s left)`;
      return `Waiting for the coordinator: it left the run${left}. Keep this tab open; it goes on when the coordinator returns.`;
    }
    case 'left':
      return o.finished
        ? 'The run finished. Thank you! Join again for the next run.'
        : 'Left the swarm; the GPU worker is closed. Join to contribute again.';
    case 'error':
      return 'Stopped by an error (below).';
  }
}

/** The adapter is a CPU rasterizer standing in for a GPU (SwiftShader, lavapipe, llvmpipe): slow, but it works. */
export function isCpuAdapter(a: { vendor: string; architecture: string; description: string; device?: string }): boolean {
  const text = `${a.vendor} ${a.architecture} ${a.description} ${a.device ?? ''}`.toLowerCase();
  return /swiftshader|lavapipe|llvmpipe|software|\bcpu\b/.test(text);
}

/**
 * Shared shapes of the swarm simulator (`tabswarm simulate`): the scenario, each simulated peer's drawn profile,
 * the per-microbatch cost the engine's FLOPs and the codecs' real bytes give, and the summary a run reports.
 */

export interface PeerProfile {
  /** 32 hex chars (the peer id format of src/net/ids.ts). */
  id: string;
  /** This peer's training throughput for ONE layer of the run's model (compute), tokens per second. */
  tokensPerSec: number;
  upBytesPerSec: number;
  downBytesPerSec: number;
  rttMs: number;
  /** Computes wrong results (the coordinator's validation should catch and evict it). */
  adversary: boolean;
  /** When it joins (virtual seconds from start). */
  joinAtS: number;
  /** Departures; returnAfterS null = never returns; a reload = small returnAfterS. */
  sessions: Array<{ leaveAtS: number; returnAfterS: number | null }>;
}

export interface Scenario {
  peers: number;
  stages: number;
  churnPerHour: number;
  adversaries: number;
  compress: string;
  hours: number;
  seed: number;
  model: { n_layer: number; n_embd: number; n_head: number; block_size: number; vocab_size: number };
  /** Microbatch size (sequences per microbatch). */
  B: number;
  /** Microbatches per step. */
  M: number;
  /** The coordinator's ownersBySpeed option (per-step mode: microbatch owners in proportion to speed). */
  ownersBySpeed?: boolean;
}

/** Per microbatch per stage boundary. */
export interface MicrobatchCost {
  flopsPerLayer: number;
  activationBytes: number;
  gradBytes: number;
  /** Bytes one parameter's gradient takes on the stage all-reduce's wire under the run's codec (absent: 4, fp32). */
  reduceBytesPerParam?: number;
}

export interface SimSummary {
  peers: number;
  tokens_per_s: number;
  ideal_tokens_per_s: number;
  efficiency: number;
  steps: number;
  steps_lost: number;
  microbatches_recomputed: number;
  coordinator_cpu_ms_per_step: number;
  control_msgs_per_s: number;
  bytes_per_peer_per_step: number;
  evicted_honest: number;
  evicted_adversaries: number;
  seconds_to_evict: number | null;
}

export interface SimInput {
  scenario: Scenario;
  profiles: PeerProfile[];
  cost: MicrobatchCost;
  /** Called now and then with the virtual time reached. */
  onProgress?: (virtualS: number) => void;
}

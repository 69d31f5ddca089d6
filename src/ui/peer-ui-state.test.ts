import { describe, expect, it } from 'vitest';
import { isCpuAdapter, uiState, uiStateLine, UI_STATES, type UiInputs } from './peer-ui-state';
import { errorAdvice } from './error-advice';
import { swarmParams } from './swarm-params';
import { soloParams } from './solo-params';
import { rtcConfig } from './serve-client';
import type { ServeConfig } from '../protocol/serve-config';

const base: UiInputs = { peer: 'training', intent: 'join', reconnecting: false, validating: false, error: false };

describe('contributor page state', () => {
  it('folds the peer, the user and the connection into one state', () => {
    expect(uiState({ ...base, intent: 'none', peer: null })).toBe('idle');
    expect(uiState({ ...base, peer: 'starting' })).toBe('joining');
    expect(uiState({ ...base, peer: 'benchmarking' })).toBe('joining');
    expect(uiState({ ...base, peer: 'linking' })).toBe('syncing');
    expect(uiState(base)).toBe('training');
    expect(uiState({ ...base, validating: true })).toBe('validating');
    expect(uiState({ ...base, reconnecting: true })).toBe('reconnecting');
    expect(uiState({ ...base, peer: 'waiting-coordinator' })).toBe('waiting-coordinator');
    expect(uiState({ ...base, intent: 'pause', peer: 'closed' })).toBe('paused');
    expect(uiState({ ...base, intent: 'leave' })).toBe('left');
    expect(uiState({ ...base, peer: 'finished' })).toBe('left');
    expect(uiState({ ...base, error: true, intent: 'pause' })).toBe('error');
    for (const s of UI_STATES) expect(uiStateLine(s).length).toBeGreaterThan(10);
    expect(uiStateLine('waiting-coordinator', { waitingLeftMs: 4200 })).toContain('5 s left');
  });

  it('flags CPU adapters', () => {
    expect(isCpuAdapter({ vendor: 'google', architecture: 'swiftshader', description: '' })).toBe(true);
    expect(isCpuAdapter({ vendor: 'mesa', architecture: '', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })).toBe(true);
    expect(isCpuAdapter({ vendor: 'nvidia', architecture: 'ampere', description: 'NVIDIA GeForce RTX 3080' })).toBe(false);
  });

  it('every error says what to do', () => {
    for (const m of ['no WebGPU adapter', 'the join URL has no coordinator=', 'x'.repeat(10_000), '', 'refused by the coordinator (protocol 6)'])
      expect(errorAdvice(m)).toMatch(/\w{4,}/);
    expect(errorAdvice('navigator.gpu is undefined')).toMatch(/Chrome|WebGPU/);
  });

  it('takes serve defaults and pins from the URL; bad values fall back', () => {
    const loc = { protocol: 'http:', hostname: 'h' } as Location;
    const fp = 'a'.repeat(64);
    const cfg: ServeConfig = {
      version: 1,
      signal: 'wss://s.example/signal',
      room: 'main',
      iceServers: [{ urls: 'turn:t.example:3478', username: 'u', credential: 'c' }],
      iceTransportPolicy: 'relay',
      turnTtlS: 3600,
      rooms: [{ room: 'main', coordinator: fp, peers: 2, token: false }],
      data: null,
      upload: true,
    };
    expect(swarmParams('', loc, null)).toBeNull();
    expect(swarmParams('', loc, cfg)).toMatchObject({ signal: cfg.signal, room: 'main', coordinator: null });
    expect(swarmParams('?room=main', loc, cfg)).toMatchObject({ coordinator: fp });
    expect(swarmParams('?room=other&coordinator=zz', loc, cfg)).toMatchObject({ room: 'other', coordinator: null });
    expect(swarmParams('?signal=ws://x:1&room=r', loc)).toMatchObject({ signal: 'ws://x:1', room: 'r' });
    expect(rtcConfig(cfg)).toEqual({ iceServers: cfg.iceServers, iceTransportPolicy: 'relay' });
    expect(rtcConfig(null)).toEqual({ iceServers: [] });
    expect(soloParams('?n_layer=1&n_embd=32&block=16&batch=2&steps=3')).toMatchObject({
      model: { n_layer: 1, n_embd: 32, block_size: 16 },
      B: 2,
      steps: 3,
    });
    expect(soloParams('?n_layer=-1&n_embd=1e9&batch=x').model).toMatchObject({ n_layer: 4, n_embd: 128 });
  });
});

import { describe, expect, it } from 'vitest';
import type { GPTConfig } from './config';
import { stageMicrobatchFlops } from './flops';

const model: GPTConfig = { n_layer: 3, n_head: 2, n_embd: 32, vocab_size: 65, block_size: 16 };

describe('stageMicrobatchFlops', () => {
  it('matches a hand count of every matmul of a middle stage (one block)', () => {
    // B=2, T=16, C=32: N = 32 tokens.
    const N = 32;
    const C = 32;
    const qkv = 2 * N * C * (3 * C); // 196_608
    const proj = 2 * N * C * C; // 65_536
    const fc = 2 * N * C * (4 * C); // 262_144
    const fcproj = 2 * N * (4 * C) * C; // 262_144
    const scores = 2 * 2 * 16 * 16 * C; // Q·Kᵀ over both sequences: 32_768
    const mix = 2 * 2 * 16 * 16 * C; // att·V: 32_768
    const hand = qkv + proj + fc + fcproj + scores + mix;
    expect(hand).toBe(851_968);
    const f = stageMicrobatchFlops(model, { layerStart: 1, layerEnd: 2 }, 2, 16);
    expect(f.forward).toBe(BigInt(hand));
    expect(f.backward).toBe(2n * BigInt(hand));
  });

  it('adds the tied lm_head on the stage that holds the head, nothing for the embeddings', () => {
    const block = 851_968n;
    const head = BigInt(2 * 32 * 32 * 65); // N·C·V·2 = 133_120
    expect(stageMicrobatchFlops(model, { layerStart: 0, layerEnd: 1 }, 2, 16).forward).toBe(block);
    expect(stageMicrobatchFlops(model, { layerStart: 1, layerEnd: 3 }, 2, 16).forward).toBe(2n * block + head);
    expect(stageMicrobatchFlops(model, { layerStart: 0, layerEnd: 3 }, 2, 16).forward).toBe(3n * block + head);
  });

  it('stays exact past 2^53 and refuses a bad batch shape', () => {
    const big: GPTConfig = { n_layer: 48, n_head: 25, n_embd: 1600, vocab_size: 50257, block_size: 1024 };
    const f = stageMicrobatchFlops(big, { layerStart: 0, layerEnd: 48 }, 8192, 1024);
    expect(f.forward > 2n ** 53n).toBe(true);
    expect(f.forward % 2n).toBe(0n);
    expect(() => stageMicrobatchFlops(model, { layerStart: 0, layerEnd: 1 }, 0, 16)).toThrow(/B must be a positive integer/);
    expect(() => stageMicrobatchFlops(model, { layerStart: 2, layerEnd: 5 }, 1, 16)).toThrow(/not a non-empty range/);
  });
});

// The WGSL template mechanism (src/gpu/wgsl.ts), without a GPU.
import { describe, expect, it } from 'vitest';
import attention from '../../shaders/attention.wgsl?raw';
import encoder from '../../shaders/encoder.wgsl?raw';
import gelu from '../../shaders/gelu.wgsl?raw';
import layernorm from '../../shaders/layernorm.wgsl?raw';
import matmul from '../../shaders/matmul.wgsl?raw';
import { entryBindings, specialise } from './wgsl';

const T = ['//#define A false', '//#define N 8', 'x {{N}}', '//#if A', 'a', '//#if !A', 'never', '//#endif', '//#else', 'not a', '//#endif'].join(
  '\n',
);

describe('specialise', () => {
  it('keeps, drops and substitutes by the variant over the defaults', () => {
    expect(specialise(T, {}, 't')).toBe('x 8\nnot a');
    expect(specialise(T, { A: true, N: 16 }, 't')).toBe('x 16\na');
  });

  it('refuses knobs the template does not declare, and unbalanced or non-boolean conditions', () => {
    expect(() => specialise(T, { B: true }, 't')).toThrow(/does not declare/);
    expect(() => specialise('{{Q}}', {}, 't')).toThrow(/no \/\/#define/);
    expect(() => specialise('//#if A\nx', {}, 't')).toThrow(/needs a true\/false/);
    expect(() => specialise('//#define A true\n//#if A\nx', {}, 't')).toThrow(/without \/\/#endif/);
    expect(() => specialise('//#define N 3\n//#if N\n//#endif', {}, 't')).toThrow(/needs a true\/false/);
  });
});

describe('entryBindings', () => {
  const code = [
    '@group(0) @binding(0) var<uniform> p: P;',
    '@group(0) @binding(1) var<storage, read> x: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> y: array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> z: array<f32>;',
    'fn helper(i: u32) -> f32 { return x[i] * p.z; }',
    'fn e1() { y[0] = helper(0u); }',
    'fn e2() { z[0] = 1.0; }',
    'fn e3() { y[0] = 1.0; }',
    'fn e4() { let x = 1.0; z[0] = x; }',
  ].join('\n');

  it('finds what an entry uses through the functions it calls (a member named like a binding is not a use)', () => {
    expect(entryBindings(code, 'e1', 't')).toEqual([
      { binding: 0, name: 'p', kind: 'uniform' },
      { binding: 1, name: 'x', kind: 'read' },
      { binding: 2, name: 'y', kind: 'rw' },
    ]);
  });

  it('refuses gaps in the binding numbers and locals that shadow a binding', () => {
    expect(() => entryBindings(code, 'e2', 't')).toThrow(/must be 0\.\.0/);
    expect(() => entryBindings(code, 'e3', 't')).toThrow(/must be 0\.\.0/);
    expect(() => entryBindings(code, 'e4', 't')).toThrow(/shadowing/);
    expect(() => entryBindings(code, 'nope', 't')).toThrow(/not found/);
  });
});

describe('the shaders', () => {
  const cases: [string, string, string[], Record<string, boolean>[]][] = [
    ['gelu', gelu, ['gelu_forward', 'gelu_backward'], [{ VEC4: false }, { VEC4: true }]],
    [
      'layernorm',
      layernorm,
      ['layernorm_forward', 'layernorm_backward_dinp', 'layernorm_dw_partial', 'layernorm_dw_final'],
      [{ VEC4: false }, { VEC4: true }],
    ],
    ['encoder', encoder, ['encoder_forward', 'encoder_backward_wte', 'encoder_backward_wpe'], [{ VEC4: false }, { VEC4: true }]],
    [
      'attention',
      attention,
      ['attention_scores', 'attention_softmax', 'attention_backward_dqkv', 'attention_av4', 'attention_atv4'],
      [{ VEC4: false }, { VEC4: true }],
    ],
    ['matmul', matmul, ['matmul_naive', 'matmul_tiled'], [{ HAS_BIAS: false }, { HAS_BIAS: true, TRANS_A: true, ACCUM: true }]],
  ];
  it.each(cases)('%s specialises to plain WGSL whose entries bind 0..n-1', (name, src, entries, variants) => {
    for (const v of variants) {
      const code = specialise(src, v, name);
      expect(code).not.toMatch(/\{\{|^\s*\/\/#/m);
      for (const e of entries) expect(entryBindings(code, e, name).length).toBeGreaterThan(1);
    }
  });
});

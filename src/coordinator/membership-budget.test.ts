import { describe, expect, it } from 'vitest';
import { controlMessageSchema, type ControlMessage } from '../protocol/messages';
import { MAX_CONTROL_BYTES } from '../net/control-envelope';
import { SIGNATURE_CHARS } from '../net/identity';
import { admit, atLongest, LONGEST_NUMBER, standbySummary, wireProblem, wireSpeed, type Candidate } from './membership-budget';

// 32 hex characters, as real peer ids (identity.ts) and the simulator's.
const id = (i: number) => i.toString(16).padStart(32, '0');

/** As the coordinator builds them: swarm-members (speeds, joins) and the step-begin that follows. */
function messages(M: number, joining: boolean) {
  return (stages: string[][], admitted: readonly Candidate[]): (ControlMessage | null)[] => [
    {
      type: 'swarm-members',
      epoch: 12,
      stages,
      speeds: stages.map((m) => m.map((_, i) => wireSpeed(1234.56789 + i / 7))),
      joins: joining ? admitted.map((c) => ({ peer: c.peer, stage: c.stage, source: stages[c.stage][0] })) : [],
      step: 3456,
    },
    stages[0].length === 0
      ? null
      : {
          type: 'step-begin',
          step: 3456,
          attempt: 2,
          owners: Array.from({ length: M }, (_, k) => k % stages[0].length),
          members: stages,
        },
  ];
}

/** The signed wire size, as SignedControl sends it. */
const signedBytes = (msg: ControlMessage) =>
  Buffer.byteLength(JSON.stringify({ type: msg.type, seq: Number.MAX_SAFE_INTEGER, body: JSON.stringify(msg), sig: 'x'.repeat(SIGNATURE_CHARS) }));

describe('membership budget', () => {
  it('admits of 3,000 waiting peers only what swarm-members and step-begin carry', () => {
    const S = 8;
    const waiting = Array.from({ length: 3000 }, (_, i) => ({ peer: id(i), stage: i % S }));
    const build = messages(64, false);
    // Without the budget: the whole swarm in one epoch is refused (stage cap and size).
    const all = Array.from({ length: S }, (_, s) => waiting.filter((c) => c.stage === s).map((c) => c.peer));
    for (const m of build(all, waiting)) expect(m && wireProblem(m)).not.toBeNull();

    const a = admit({ current: Array.from({ length: S }, () => []), waiting, joining: false, messages: build });
    expect(a.overBudget).toEqual([]);
    expect(a.admitted.length).toBeGreaterThan(100);
    expect(a.admitted.length + a.standby.length).toBe(3000);
    // 375 a stage: 119 of each over the schema's 256 members; of the 2,048 left, some over the wire's size.
    expect(a.standby.filter((s) => s.limit === 'stage-members').length).toBe(S * 119);
    expect(a.standby.filter((s) => s.limit === 'wire').length).toBe(3000 - S * 119 - a.admitted.length);
    expect(a.admitted.length).toBeLessThan(S * 256);
    const stages = Array.from({ length: S }, (_, s) => a.admitted.filter((c) => c.stage === s).map((c) => c.peer));
    for (const m of build(stages, a.admitted)) {
      if (!m) throw new Error('no step-begin');
      // As sent, and as it may grow while this membership stands (speeds with 17 digits, epochs and steps later).
      for (const x of [m, atLongest(m)]) {
        expect(controlMessageSchema.safeParse(x).success).toBe(true);
        expect(signedBytes(x)).toBeLessThanOrEqual(MAX_CONTROL_BYTES);
      }
    }
    // The longest prefix: one more peer would not fit.
    const next = waiting[a.admitted.length];
    stages[next.stage].push(next.peer);
    expect(build(stages, [...a.admitted, next]).some((m) => m && wireProblem(atLongest(m)) !== null)).toBe(true);
    expect(standbySummary(a)).toMatch(
      /^\d+ peer\(s\) on standby: 952 because their stage is at the protocol's 256 members; \d+ because swarm-members or step-begin/,
    );
  });

  it('skips a full stage without blocking the peers behind it, and caps joins', () => {
    const current = [Array.from({ length: 256 }, (_, i) => `a${i}`), ['b0']];
    const waiting = [{ peer: 'x0', stage: 0 }, ...Array.from({ length: 300 }, (_, i) => ({ peer: `y${i}`, stage: 1 }))];
    // Short ids and no step-begin owners: only the schema caps bind here.
    const build = (stages: string[][], admitted: readonly Candidate[]): ControlMessage[] => [
      { type: 'swarm-members', epoch: 1, stages, speeds: [], joins: admitted.map((c) => ({ peer: c.peer, stage: c.stage, source: 'b0' })), step: 0 },
    ];
    const a = admit({
      current,
      waiting,
      joining: true,
      messages: (s, ad) =>
        build(
          s.map((m) => m.slice(0, 1)),
          ad,
        ),
    });
    expect(a.standby.find((s) => s.peer === 'x0')?.limit).toBe('stage-members');
    expect(a.admitted.length).toBe(255); // stage 1 fills up to 256 members with b0
    expect(a.standby.filter((s) => s.limit === 'stage-members').length).toBe(1 + 45);
    const joins = admit({
      current: [[], ['b0']],
      waiting: waiting.slice(1).map((c, i) => ({ ...c, stage: i % 2 })),
      joining: true,
      messages: () => [],
    });
    expect(joins.admitted.length).toBe(256);
    expect(joins.standby.every((s) => s.limit === 'joins')).toBe(true);
  });

  it('leaves a message that cannot fit with nobody admitted out of the check, and says why', () => {
    const waiting = Array.from({ length: 4 }, (_, i) => ({ peer: id(i), stage: 0 }));
    // A standing membership of 1,000 64-character ids (e.g. one admitted under a larger cap): both messages are
    // over 60 KiB signed whoever joins; admission goes on by the schema caps alone.
    const long = (i: number) => `q${String(i).padStart(63, '0')}`;
    const current = Array.from({ length: 4 }, (_, s) => Array.from({ length: 250 }, (_, i) => long(s * 250 + i)));
    const a = admit({ current, waiting, joining: true, messages: messages(64, true) });
    expect(a.overBudget).toHaveLength(2);
    expect(a.overBudget.join('\n')).toMatch(/step-begin message of \d+ bytes signed > 61440/);
    expect(a.admitted.length).toBe(4);
  });
  it('carries speeds at three significant digits, never longer than LONGEST_NUMBER', () => {
    expect([0, 123.456789, 0.00000123456, 1.2345e-9, 5e13, -3].map(wireSpeed)).toEqual([0, 123, 0.00000123, 1.23e-9, 999e9, 0]);
    for (const x of [0.000001234567, 1234567.891, 98765432109876, 3.3e-12])
      expect(JSON.stringify(wireSpeed(x)).length).toBeLessThanOrEqual(JSON.stringify(LONGEST_NUMBER).length);
  });
});

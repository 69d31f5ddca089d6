// A step trace at the schema's bounds: its parts, each escaped into a signed envelope, fit one control message
// (16 KiB), parse, and concatenate back to what was recorded.
import { describe, expect, it } from 'vitest';
import { controlBody } from '../protocol/signed-control';
import { StepTraceRecorder } from './step-trace';

describe('StepTraceRecorder', () => {
  it('a large trace (received entries with signatures) splits into parts that each fit a signed control message', async () => {
    const rec = new StepTraceRecorder(false);
    rec.begin(4095, 7);
    const peer = (i: number) => (i % 16).toString(16).repeat(32);
    const sig = 'A'.repeat(86);
    for (let mb = 0; mb < 600; mb++) {
      rec.sentTo(mb + 3000, peer(mb), mb % 2 ? 'act' : 'grad', Uint8Array.of(mb & 255, mb >> 8));
      rec.received(mb + 3000, peer(mb + 1), mb % 2 ? 'act' : 'grad', new Uint8Array(0), 'f'.repeat(32), sig);
      rec.backwardRan(mb + 3000);
      rec.loss(mb + 3000, 1 / 3 + mb);
    }
    const msgs = await rec.messages(2, 'c'.repeat(32), true);
    expect(msgs.length).toBeGreaterThan(1);
    for (const m of msgs) expect(() => controlBody(m)).not.toThrow(); // schema + the 16 KiB bound, envelope escaped
    expect(msgs.flatMap((m) => m.recv)).toHaveLength(600);
    expect(msgs.flatMap((m) => m.recv)[599]).toEqual([3599, peer(600), 'f'.repeat(32), sig]);
    expect(msgs.flatMap((m) => m.sent)).toHaveLength(600);
    expect(msgs.flatMap((m) => m.losses ?? [])).toHaveLength(600);
  });
});

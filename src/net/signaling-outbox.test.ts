// The reconnect queue and policy (docs/resilience.md, "Signaling server restart"): per-member order, bounds, and
// which closes and refusals are retried.
import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_RECONNECT, isTransientRefusal, shouldReconnect } from './reconnect-policy';
import { SignalingOutbox, type OutboxEntry } from './signaling-outbox';

const entry = (to: string, text: string): OutboxEntry => ({ to, text, bytes: text.length, control: true });

describe('SignalingOutbox', () => {
  it('gives each member its messages in order, without waiting for the others', () => {
    const box = new SignalingOutbox(100, 1 << 20);
    box.push([entry('a', 'a1'), entry('b', 'b1'), entry('a', 'a2'), entry('c', 'c1'), entry('b', 'b2')]);
    expect(box.take((to) => to === 'b', 10).map((e) => e.text)).toEqual(['b1', 'b2']);
    expect(box.size).toBe(3);
    expect(box.take((to) => to !== 'c', 1).map((e) => e.text)).toEqual(['a1']);
    // The limit keeps a2 back; c is not ready: both stay, in order.
    expect(box.take(() => true, 10).map((e) => e.text)).toEqual(['a2', 'c1']);
    expect(box.size).toBe(0);
    expect(box.bytes).toBe(0);
  });

  it('keeps a member whose entry was held back behind it (order within a member never changes)', () => {
    const box = new SignalingOutbox(100, 1 << 20);
    box.push([entry('a', 'a1'), entry('a', 'a2'), entry('a', 'a3')]);
    expect(box.take(() => true, 1).map((e) => e.text)).toEqual(['a1']);
    expect(box.take(() => true, 5).map((e) => e.text)).toEqual(['a2', 'a3']);
  });

  it('is bounded in count and bytes, all or nothing', () => {
    const box = new SignalingOutbox(3, 10);
    expect(box.push([entry('a', '1234'), entry('b', '1234')])).toBe(true);
    expect(box.refusal([entry('a', '123')])).toMatch(/bytes already wait/);
    expect(box.push([entry('a', '123')])).toBe(false);
    expect(box.push([entry('a', '1'), entry('b', '2')])).toBe(false); // would be 4 messages
    expect(box.size).toBe(2);
    expect(box.push([entry('c', '12')])).toBe(true);
    expect(box.refusal([entry('c', '')])).toMatch(/messages already wait/);
  });

  it('puts messages to send again ahead of the queue', () => {
    const box = new SignalingOutbox(4, 1 << 20);
    box.push([entry('a', 'a3'), entry('b', 'b2')]);
    expect(box.unshift([entry('a', 'a1'), entry('a', 'a2')])).toBe(true);
    expect(box.unshift([entry('a', 'a0')])).toBe(false); // bounded like push
    expect(box.take(() => true, 10).map((e) => e.text)).toEqual(['a1', 'a2', 'a3', 'b2']);
  });

  it('drops the messages of a member that did not come back', () => {
    const box = new SignalingOutbox(100, 1 << 20);
    box.push([entry('a', 'a1'), entry('b', 'b1'), entry('a', 'a2')]);
    expect(box.addressees().sort()).toEqual(['a', 'b']);
    expect(box.dropFor('a')).toBe(2);
    expect(box.has('a')).toBe(false);
    expect(box.bytes).toBe(2);
  });
});

describe('reconnect policy', () => {
  it('rejoins after a broken connection only, never after a close the server meant', () => {
    for (const code of [1001, 1005, 1006, 1011, 1012, 1013, 1014]) expect(shouldReconnect(code)).toBe(true);
    // 4001: replaced by a newer connection with the same key (a reloaded tab); 4003: join token required.
    for (const code of [1000, 1002, 1003, 1008, 1009, 4001, 4003]) expect(shouldReconnect(code)).toBe(false);
  });

  it('retries a busy or rate-limited server, not a refusal', () => {
    expect(isTransientRefusal('busy')).toBe(true);
    expect(isTransientRefusal('rate-limited')).toBe(true);
    for (const code of ['bad-token', 'not-coordinator', 'bad-signature', 'forbidden', 'room-full', 'invalid'] as const)
      expect(isTransientRefusal(code)).toBe(false);
  });

  it('backs off 250 ms doubling to 8 s, jittered to [1/2, 1] of it', () => {
    const full = [250, 500, 1000, 2000, 4000, 8000, 8000, 8000];
    full.forEach((ms, i) => {
      expect(backoffDelay(i + 1, DEFAULT_RECONNECT, 0)).toBe(ms / 2);
      expect(backoffDelay(i + 1, DEFAULT_RECONNECT, 0.999999)).toBe(ms);
    });
    expect(backoffDelay(1000, DEFAULT_RECONNECT, 0.5)).toBe(6000); // no overflow on a long outage
  });
});

// `tabswarm demo --adversaries N --attack MODE` (tests and demos only, docs/trust.md "Adversaries"): the last N Node
// peers attack the run. A child process's id comes from its key, so the demo writes the attackers' key files itself
// (a temporary folder, removed at the end) and knows their ids for the summary's "adversaries".
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttackSpec } from '../swarm/adversary';
import { num, str, UsageError } from './args';
import { loadOrCreateKeyFile } from './key-file';
import { attackFromFlag } from './peer';

export const adversaryHelp = `  --adversaries N --attack MODE   FOR TESTS AND DEMOS ONLY (with --node-peers): the last N peers attack the run
                      (nan, scale:K, signflip, random, stale, bad-activations, forge-reports, frame-robust; docs/trust.md)`;

export interface AdversaryPlan {
  count: number;
  attack: AttackSpec | null;
}

/** The flags' adversaries: N of the n Node peers (at least one honest), with an attack. */
export function adversaryPlan(values: Record<string, unknown>, n: number, nodePeers: boolean): AdversaryPlan {
  const count = num(values, 'adversaries', 0, { int: true, min: 0 });
  const attack = attackFromFlag(str(values, 'attack')) ?? null;
  if (count === 0 && attack) throw new UsageError('--attack needs --adversaries N (how many peers attack)');
  if (count === 0) return { count, attack: null };
  if (!attack) throw new UsageError('--adversaries needs --attack MODE');
  if (!nodePeers) throw new UsageError('--adversaries needs --node-peers (tabs do not attack)');
  if (count >= n) throw new UsageError(`--adversaries ${count}: at least one of the ${n} peers must be honest`);
  return { count, attack };
}

/** Whether contributor i of n attacks (the last `count`). */
export function attacks(plan: AdversaryPlan, i: number, n: number): boolean {
  return plan.attack !== null && i >= n - plan.count;
}

/** Key files for the attacking child processes: their paths and ids; cleanup() removes them. */
export async function adversaryKeyFiles(count: number): Promise<{ paths: string[]; ids: string[]; cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'tabswarm-adversaries-'));
  const paths: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, `adversary-${i + 1}.key`);
    const { identity } = await loadOrCreateKeyFile(path);
    paths.push(path);
    ids.push(identity.id);
  }
  return { paths, ids, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// `tabswarm simulate`: the swarm at sizes these machines cannot hold. A scenario (flags, or a JSON file with
// --config) -> simulated peers drawn from its seed (src/sim/peer-profiles.ts) and the microbatch cost from the
// engine's FLOPs and the codecs' bytes (src/sim/microbatch-cost.ts) -> the discrete-event simulator driving the real
// coordinator (src/sim/simulator.ts) -> a summary. Progress goes to stderr; the JSON summary is the last stdout line.
// `--report DIR` runs 10, 100, 1,000 and 10,000 peers and writes DIR/report.md and DIR/report.svg.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { drawProfiles, microbatchCost } from '../sim/peer-profiles';
import { breakSentence, markdownReport, svgPlot, terminalTable, type ReportRow } from '../sim/report';
import { Rng } from '../sim/rng';
import { buildScenario, configFromFlags, configFromJson, scenarioArgOptions, ScenarioError, type ScenarioConfig } from '../sim/scenario';
import { runSimulation, type SimResult } from '../sim/simulator';
import type { Scenario } from '../sim/types';
import { parse, UsageError } from './args';

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const simulateSummary = 'simulate thousands of peers on home connections against the real coordinator, on a virtual clock';

export const simulateHelp = `tabswarm simulate [flags]
  --peers 100            simulated contributors at the start (newcomers replace those who leave for good)
  --stages 4             pipeline stages                    --hours 1          simulated time
  --churn-per-hour 0.1   share of the swarm leaving per hour (30% for good, 30% back in minutes, 40% reloads)
  --adversaries 0        share of adversarial peers (0 <= F < 1)
  --compress default     the wire codecs, as tabswarm coordinator --compress (none, default, compact or JSON)
  --seed 1               every draw (devices, connections, churn, adversaries) follows from it
  --batch-size 12 --microbatches M   B sequences per microbatch; M per step (default 2 per first-stage replica of
                         the swarm the coordinator can admit, at most ~1,000 members)
  --config FILE          a JSON scenario {peers, stages, churnPerHour, adversaries, compress, hours, seed, model:
                         {n_layer, n_head, n_embd, block_size, vocab_size}, B, M, ownersBySpeed}; flags override it
                         (ownersBySpeed: the coordinator's per-step owners in proportion to speed; off by default)
  --json                 no table: progress on stderr, the JSON summary alone on stdout
  --report DIR           run 10, 100, 1,000 and 10,000 peers; write DIR/report.md (table) and DIR/report.svg (plot)
The model is the reference config (n_layer 4, n_head 4, n_embd 128, block 64, vocab 65) unless the config file
says otherwise. The last stdout line is the JSON summary ({peers, tokens_per_s, ideal_tokens_per_s, efficiency,
steps, steps_lost, microbatches_recomputed, coordinator_cpu_ms_per_step, control_msgs_per_s, bytes_per_peer_per_step,
evicted_honest, evicted_adversaries, seconds_to_evict}; with --report, {report, summaries}).`;

export const REPORT_SIZES = [10, 100, 1000, 10_000] as const;

/** How often progress is printed, in wall-clock milliseconds. */
const PROGRESS_MS = 2000;

/** Writes DIR/report.md and DIR/report.svg for these rows; returns their paths. */
export function writeReport(rows: readonly ReportRow[], dir: string): { md: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const md = join(dir, 'report.md');
  const svg = join(dir, 'report.svg');
  writeFileSync(md, markdownReport(rows, 'report.svg'));
  writeFileSync(svg, svgPlot(rows));
  return { md, svg };
}

/** One scenario through the simulator, progress on stderr. */
export async function simulateOne(scenario: Scenario): Promise<ReportRow> {
  const profiles = drawProfiles(scenario, new Rng(scenario.seed));
  const cost = microbatchCost(scenario);
  const horizon = scenario.hours * 3600;
  const t0 = performance.now();
  let last = t0;
  process.stderr.write(
    `simulate: ${scenario.peers} peers (${profiles.length} with newcomers), ${scenario.stages} stages, M ${scenario.M}, ` +
      `${scenario.hours} h, seed ${scenario.seed}; ${cost.flopsPerLayer.toExponential(3)} FLOPs per layer per microbatch, ` +
      `${cost.activationBytes} + ${cost.gradBytes} bytes per microbatch per boundary\n`,
  );
  const result = await runSimulation({
    scenario,
    profiles,
    cost,
    onProgress: (virtualS) => {
      const now = performance.now();
      if (now - last < PROGRESS_MS) return;
      last = now;
      process.stderr.write(
        `simulate: ${scenario.peers} peers: ${virtualS.toFixed(0)} / ${horizon.toFixed(0)} s simulated, ${((now - t0) / 1000).toFixed(0)} s wall\n`,
      );
    },
  });
  const wallS = (performance.now() - t0) / 1000;
  process.stderr.write(`simulate: ${scenario.peers} peers done in ${wallS.toFixed(1)} s wall\n`);
  return { scenario, summary: result.summary, wallS, limits: limitsOf(result) };
}

/** What the run hit that the summary has no field for: coordinator messages the protocol refused, broken steps. */
export function limitsOf(result: Pick<SimResult, 'invariants'>): string[] {
  const inv = result.invariants;
  const out = Object.entries(inv.refused)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([why, n]) => `the protocol refused ${n} coordinator message(s): ${why}`);
  if (inv.badSteps.length) out.push(`${inv.badSteps.length} step(s) lost or double-counted a microbatch`);
  if (inv.syncsDisagreeing) out.push(`${inv.syncsDisagreeing} outer sync(s) left a stage's replicas with different weights`);
  // E.g. a replica lost during a local-steps outer sync: the real coordinator ends the run there.
  if (inv.coordinatorError !== undefined) out.push(`the coordinator's run ended: ${inv.coordinatorError}`);
  if (inv.standby) out.push(`the coordinator kept up to ${inv.standby.peers} peers on standby: ${inv.standby.why}`);
  return out;
}

function readConfigFile(path: string | undefined): ScenarioConfig {
  if (path === undefined) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError(`--config: cannot read ${path}: ${(e as Error).message}`);
  }
  return configFromJson(text, path);
}

export async function simulate(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...scenarioArgOptions, json: { type: 'boolean' }, report: { type: 'string' } });
  const json = values.json === true;
  const reportDir = typeof values.report === 'string' ? values.report : undefined;
  let file: ScenarioConfig;
  let flags: ScenarioConfig;
  let scenarios: Scenario[];
  try {
    flags = configFromFlags(values);
    file = readConfigFile(typeof values.config === 'string' ? values.config : undefined);
    // A report runs every size with the rest of the scenario as given (M follows each size unless it was given).
    scenarios = reportDir !== undefined ? REPORT_SIZES.map((peers) => buildScenario(file, { ...flags, peers })) : [buildScenario(file, flags)];
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(e.message);
    throw e;
  }
  const rows: ReportRow[] = [];
  for (const sc of scenarios) rows.push(await simulateOne(sc));
  if (!json) {
    console.log(terminalTable(rows));
    console.log(breakSentence(rows));
  }
  if (reportDir !== undefined) {
    const written = writeReport(rows, reportDir);
    if (!json) console.log(`report: ${written.md}, ${written.svg}`);
    console.log(JSON.stringify({ report: written.md, summaries: rows.map((r) => r.summary) }));
  } else console.log(JSON.stringify(rows[0].summary));
  return 0;
}

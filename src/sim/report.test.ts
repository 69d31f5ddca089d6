import { describe, expect, it } from 'vitest';
import { breakpoints, breakSentence, markdownReport, markdownTable, svgPlot, terminalTable, type ReportRow } from './report';
import { buildScenario } from './scenario';
import type { SimSummary } from './types';

function row(peers: number, over: Partial<SimSummary> = {}): ReportRow {
  const scenario = buildScenario({ peers }, {});
  const summary: SimSummary = {
    peers,
    tokens_per_s: 1000 * peers * 0.9,
    ideal_tokens_per_s: 1000 * peers,
    efficiency: 0.9,
    steps: 100,
    steps_lost: 0,
    microbatches_recomputed: 3,
    coordinator_cpu_ms_per_step: 1,
    control_msgs_per_s: 10 * peers,
    bytes_per_peer_per_step: 123_456,
    evicted_honest: 0,
    evicted_adversaries: 0,
    seconds_to_evict: null,
    ...over,
  };
  return { scenario, summary, wallS: 1.5 };
}

describe('report', () => {
  it('says nothing breaks when every size is efficient and the coordinator keeps up', () => {
    const rows = [row(10), row(100), row(1000), row(10_000)];
    for (const r of rows) expect(breakpoints(r)).toEqual([]);
    expect(breakSentence(rows)).toBe('Nothing breaks up to 10,000 peers: every size reaches efficiency >= 0.8.');
  });

  it('names where it breaks: efficiency, the coordinator CPU, honest evictions, no steps, a limit the simulator names', () => {
    // 10,000 peers, 4 stages: M = 512 microbatches (the admitted swarm's) x 12 x 64 tokens; at 4.6e5 tokens/s a step is ~855 ms
    const slow = row(10_000, { efficiency: 0.3, tokens_per_s: 4.6e5, coordinator_cpu_ms_per_step: 600 });
    const why = breakpoints(slow);
    expect(why[0]).toBe('efficiency 0.300 is under the goal of 0.8');
    expect(breakpoints(row(1000, { efficiency: 0.00022 }))[0]).toBe('efficiency 2.2e-4 is under the goal of 0.8');
    expect(why[1]).toMatch(/^the coordinator's CPU is the limit: 600 ms per step of a 855 ms step/);
    expect(breakpoints(row(10, { steps: 0, efficiency: 0 }))).toEqual(['no step completed in the simulated time']);
    expect(breakpoints(row(10, { evicted_honest: 2 }))).toEqual(['2 honest peer(s) evicted']);
    const named = { ...row(1000), summary: { ...row(1000).summary, limit: 'swarm-members exceeds 256 per stage' } };
    expect(breakpoints(named)).toEqual(['swarm-members exceeds 256 per stage']);
    const capped = { ...row(1000), limits: ['12 swarm-members refused by the protocol schema (a stage over 256 members)'] };
    expect(breakpoints(capped)).toEqual(['12 swarm-members refused by the protocol schema (a stage over 256 members)']);
    expect(breakSentence([row(10), slow])).toMatch(/^At 10,000 peers it breaks: efficiency 0\.30/);
  });

  it('renders the table for a terminal and as markdown', () => {
    const rows = [row(10), row(100)];
    const t = terminalTable(rows);
    expect(t).toContain('tokens/s');
    expect(t).toContain('9,000');
    const md = markdownTable(rows);
    expect(md.split('\n')).toHaveLength(4);
    expect(md.split('\n')[2]).toMatch(/^\| 10 \| 9,000 \| 10,000 \| 0\.900 \| 100 \| 0 \| 3 \| 1 \| 100 \| 123,456 \| 0 \| 0 \| - \| 1\.5 \|$/);
    const report = markdownReport(rows, 'report.svg');
    expect(report).toContain('![efficiency and tokens/s vs peers](report.svg)');
    expect(report).toContain('microbatches per step M: 10 peers: 6, 100 peers: 50');
  });

  it('draws an SVG with a log x axis over the decades, one point per size per line', () => {
    const svg = svgPlot([row(10), row(100), row(1000), row(10_000, { efficiency: 0.5 })]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    for (const tick of ['>10<', '>100<', '>1,000<', '>10,000<']) expect(svg).toContain(tick);
    expect(svg.match(/<polyline/g)).toHaveLength(3);
    expect(svg.match(/<circle/g)).toHaveLength(12);
    // the x positions of the four sizes are evenly spaced (log axis)
    const xs = [...svg.matchAll(/<polyline[^>]*points="([^"]+)"/g)][0][1].split(' ').map((p) => Number(p.split(',')[0]));
    expect(xs[1] - xs[0]).toBeCloseTo(xs[2] - xs[1], 0);
    expect(xs[2] - xs[1]).toBeCloseTo(xs[3] - xs[2], 0);
    expect(svg).toContain('&#x2716;'); // the broken size is marked
    expect(svg).not.toMatch(/NaN|Infinity/);
  });
});

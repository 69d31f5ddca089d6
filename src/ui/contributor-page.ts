// Contributor page (index.html). On `tabswarm serve` it reads GET /api/config (ICE servers, live runs) and offers
// the live run(s) to join in one click; a join URL (?signal=ws://host:port&room=ROOM&coordinator=FP, see
// src/ui/swarm-params.ts) joins that run at once. Either way the tab is a swarm peer (<tabswarm-peer>,
// src/ui/swarm-peer-view.ts). Anywhere else, without parameters, it is the single-tab engine (<tabswarm-engine>,
// src/ui/solo-engine.ts). Training always runs in a Worker.
//
// The swarm code loads in steps (dynamic imports, a yield between): evaluating the whole module graph at once (zod
// schemas, the swarm stack, lit) was one main-thread task of 300-600 ms on a slow CPU while the tab joined.
import { fetchServeConfig } from './serve-client';
import { swarmParams } from './swarm-params';

const yieldToPage = () => new Promise<void>((r) => setTimeout(r, 0));

async function main(): Promise<void> {
  const slot = document.querySelector('#app') ?? document.body;
  const lead = document.querySelector('p.lead');
  let config = null;
  try {
    config = await fetchServeConfig();
  } catch (e) {
    const err = document.createElement('p');
    err.className = 'err';
    err.textContent = `The server's /api/config is unreadable (${(e as Error).message}). Reload the page; if it persists, tell the organiser.`;
    slot.append(err);
  }
  const swarm = swarmParams(location.search, location, config);
  if (!swarm) {
    const { TabswarmEngine } = await import('./solo-engine');
    slot.append(new TabswarmEngine());
    return;
  }
  // Each step's new modules evaluate in one task; the largest were ~190 ms of thread time on lavapipe's CPU with
  // four steps, so the graph is cut finer (tests/browser/contributor-page.test.ts traces every task).
  for (const step of [
    () => import('lit'),
    () => import('zod'),
    () => import('../net/signaling-client'),
    () => import('../protocol/messages'),
    () => import('../net/peer-network'),
    () => import('../swarm/stage-runtime'),
    () => import('../swarm/peer'),
    () => import('../coordinator/run-view-store'),
    () => import('../swarm/worker-stage-compute'),
  ]) {
    await step();
    await yieldToPage();
  }
  const { TabswarmPeer } = await import('./swarm-peer-view');
  const view = new TabswarmPeer();
  view.params = swarm;
  view.config = config;
  slot.append(view);
  if (lead) lead.textContent = 'This tab joins a swarm: it trains one pipeline stage of a GPT with the other tabs of the run, over WebRTC.';
}

void main();

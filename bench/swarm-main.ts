// `node bin/run-ts.mjs bench/swarm-main.ts [--json out.json]`: the swarm benchmark alone (see bench/swarm.ts).
// Run it inside a loopback-only namespace like the tests if you can:
//   unshare -n -- bash -c 'ip link set lo up && XDG_RUNTIME_DIR=/tmp node bin/run-ts.mjs bench/swarm-main.ts'
import { writeFileSync } from 'node:fs';
import { benchSwarm } from './swarm';

const r = await benchSwarm();
const i = process.argv.indexOf('--json');
if (i >= 0 && process.argv[i + 1]) writeFileSync(process.argv[i + 1], JSON.stringify(r, null, 2));
else console.log(JSON.stringify(r));
process.exit(0);

// `npm run server [-- --host 127.0.0.1 --port 8787]`: runs the signaling server until SIGINT/SIGTERM.
// Binds loopback unless --host says otherwise; binding another address is an explicit choice.

import { parseArgs } from 'node:util';
import { startSignalingServer } from './server';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8787' },
    quiet: { type: 'boolean', default: false },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid --port ${values.port}`);
  process.exit(2);
}

const server = await startSignalingServer({
  host: values.host,
  port,
  log: values.quiet ? undefined : (msg) => console.log(`[signaling] ${msg}`),
});
console.log(`[signaling] ready: ${server.url}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.close().then(() => process.exit(0));
  });
}

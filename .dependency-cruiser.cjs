// Import boundaries (docs/architecture.md): the layers, top to bottom,
//
//   ui, cli (entries; bench too)  ->  coordinator  ->  swarm  ->  protocol  ->  model  ->  compress  ->  gpu
//                                                                     \->  net (generic transport, below protocol)
//   worker (a Web Worker entry hosting a stage): model, compress, gpu only; the tokens worker (a run's data, off
//   the page's main thread) also protocol and swarm's run-data.   signaling-server: net only.
//
// Each rule names what it forbids, so a failing `npm run lint` says which boundary an import crosses. Tests (tests/
// and any *.test.ts) may import anything: they are never the `from` side of a rule.
/** @type {import('dependency-cruiser').IConfiguration} */

const TESTS = '(^tests/|\\.test\\.ts$)';
const OURS = '^(src|signaling-server|bench|bin)/';

/** A rule forbidding modules under `from` (tests excepted) to import any of ours outside `allowed`. */
const onlyDown = (name, comment, from, allowed) => ({
  name,
  comment,
  severity: 'error',
  from: { path: from, pathNot: TESTS },
  to: { path: OURS, pathNot: allowed },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle ties layers together: split the shared part out, below both.',
      severity: 'error',
      from: { pathNot: TESTS },
      to: { circular: true },
    },
    onlyDown('gpu-is-the-bottom', 'src/gpu imports nothing of ours above it.', '^src/gpu/', '^src/gpu/'),
    onlyDown('compress-only-on-gpu', 'src/compress (wire codecs) imports src/gpu only.', '^src/compress/', '^src/(compress|gpu)/'),
    onlyDown('model-only-on-compress-gpu', 'src/model imports src/compress and src/gpu only.', '^src/model/', '^src/(model|compress|gpu)/'),
    onlyDown('net-is-generic', 'src/net imports nothing of ours above it: the swarm protocol lives in src/protocol.', '^src/net/', '^src/net/'),
    onlyDown(
      'protocol-on-net-and-model',
      'src/protocol imports src/net, src/model and below only.',
      '^src/protocol/',
      '^src/(protocol|net|model|compress|gpu)/',
    ),
    onlyDown(
      'swarm-below-coordinator',
      'src/swarm imports protocol, net, model, gpu; never src/coordinator (the coordinator may use swarm parts).',
      '^src/swarm/',
      '^src/(swarm|protocol|net|model|compress|gpu)/',
    ),
    onlyDown(
      'coordinator-below-entries',
      'src/coordinator imports swarm, protocol, net, model, gpu; never the entries (ui, cli, worker).',
      '^src/coordinator/',
      '^src/(coordinator|swarm|protocol|net|model|compress|gpu)/',
    ),
    onlyDown(
      'worker-only-model-gpu',
      'src/worker (a Web Worker entry) hosts a stage: model and gpu only.',
      '^src/worker/(?!tokens-worker\\.ts$)',
      '^src/(worker|model|compress|gpu)/',
    ),
    onlyDown(
      'tokens-worker-only-data',
      "src/worker/tokens-worker.ts prepares a run's tokens: the run config (protocol), swarm's run-data, model below.",
      '^src/worker/tokens-worker\\.ts$',
      '^src/(protocol/run-config|swarm/run-data|model|compress|gpu)',
    ),
    onlyDown(
      'server-only-net',
      'The signaling server relays envelopes: it imports src/net only.',
      '^signaling-server/',
      '^(signaling-server|src/net)/',
    ),
    {
      name: 'nothing-imports-ui',
      comment: 'src/ui holds entries (pages): nothing below imports them.',
      severity: 'error',
      from: { path: OURS, pathNot: `${TESTS}|^src/ui/` },
      to: { path: '^src/ui/' },
    },
    {
      name: 'nothing-imports-sim',
      comment: 'src/sim is the simulator (tabswarm simulate): an entry-level layer; only src/cli and tests import it.',
      severity: 'error',
      from: { path: OURS, pathNot: `${TESTS}|^src/sim/|^src/cli/` },
      to: { path: '^src/sim/' },
    },
    {
      name: 'nothing-imports-cli',
      comment: 'src/cli holds entries (commands): only bin/ starts them.',
      severity: 'error',
      from: { path: OURS, pathNot: `${TESTS}|^src/cli/|^bin/` },
      to: { path: '^src/cli/' },
    },
    {
      name: 'nothing-imports-bench',
      comment: 'bench/ measures; nothing depends on it.',
      severity: 'error',
      from: { path: OURS, pathNot: `${TESTS}|^bench/` },
      to: { path: '^bench/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to nothing (a typo, a moved file).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true, pathNot: '\\?raw$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|\\.cache)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};

// A child for tests/cli/dawn-warnings.test.ts. `dawn`: opens the Node GPU runtime (Dawn's first adapter enumeration,
// where its limit warnings come from). `filter`: native-level writes to fd 2 inside withoutDawnLimitWarnings: the
// two Dawn lines and one other warning, which must survive.
import { writeSync } from 'node:fs';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import { withoutDawnLimitWarnings } from '../../src/gpu/native-stderr';

const mode = process.argv[2];
if (mode === 'dawn') {
  const rt = await nodeRuntime({});
  rt.destroy();
} else if (mode === 'filter') {
  process.stderr.write('before\n');
  const r = withoutDawnLimitWarnings(() => {
    writeSync(
      2,
      'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n',
    );
    writeSync(2, 'Warning: some other native warning\n');
    writeSync(
      2,
      'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n',
    );
    return 42;
  });
  process.stderr.write(`after ${r}\n`);
} else {
  process.stderr.write('usage: dawn-probe.ts dawn|filter\n');
  process.exit(2);
}
process.stdout.write('probe ok\n');
process.exit(0);

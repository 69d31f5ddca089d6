// The `tabswarm` command line. Each subcommand lives in its own file.
import { UsageError } from './args';
import { coordinator, coordinatorHelp } from './coordinator';
import { demo, demoHelp } from './demo';
import { evalHelp, evaluate } from './eval';
import { grad, gradHelp } from './grad';
import { ledger, ledgerHelp } from './ledger';
import { peer, peerHelp } from './peer';
import { sample, sampleHelp } from './sample';
import { train, trainHelp } from './train';

const commands: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  train: { run: train, help: trainHelp },
  eval: { run: evaluate, help: evalHelp },
  sample: { run: sample, help: sampleHelp },
  grad: { run: grad, help: gradHelp },
  demo: { run: demo, help: demoHelp },
  coordinator: { run: coordinator, help: coordinatorHelp },
  peer: { run: peer, help: peerHelp },
  ledger: { run: ledger, help: ledgerHelp },
};

export function usage(): string {
  return ['usage: tabswarm <command> [flags]', '', ...Object.values(commands).map((c) => c.help + '\n')].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? 0 : 2;
  }
  const c = commands[cmd];
  if (!c) {
    console.error(`tabswarm: unknown command "${cmd}"\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(c.help);
    return 0;
  }
  try {
    return await c.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`tabswarm ${cmd}: ${e.message}\n\n${c.help}`);
      return 2;
    }
    console.error(`tabswarm ${cmd}: ${(e as Error).message}`);
    if (process.env.TABSWARM_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}

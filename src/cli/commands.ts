// The registry of `tabswarm` commands: name, one-line summary (for `tabswarm --help` and the README's CLI reference),
// full help (for `tabswarm <command> --help`) and entry point. Each command's file exports its summary beside its help,
// so the one-liner lives with the command it describes; a new command is one line here.
import { coordinator, coordinatorHelp, coordinatorSummary } from './coordinator';
import { demo, demoHelp, demoSummary } from './demo';
import { evalHelp, evalSummary, evaluate } from './eval';
import { grad, gradHelp, gradSummary } from './grad';
import { ledger, ledgerHelp, ledgerSummary } from './ledger';
import { peer, peerHelp, peerSummary } from './peer';
import { sample, sampleHelp, sampleSummary } from './sample';
import { serve, serveHelp, serveSummary } from './serve';
import { simulate, simulateHelp, simulateSummary } from './simulate';
import { train, trainHelp, trainSummary } from './train';

export interface Command {
  name: string;
  /** One line, no trailing period: what the command is for. */
  summary: string;
  /** The full help `tabswarm <name> --help` prints. */
  help: string;
  run: (argv: string[]) => Promise<number>;
}

export const commands: readonly Command[] = [
  { name: 'demo', summary: demoSummary, help: demoHelp, run: demo },
  { name: 'serve', summary: serveSummary, help: serveHelp, run: serve },
  { name: 'coordinator', summary: coordinatorSummary, help: coordinatorHelp, run: coordinator },
  { name: 'peer', summary: peerSummary, help: peerHelp, run: peer },
  { name: 'train', summary: trainSummary, help: trainHelp, run: train },
  { name: 'eval', summary: evalSummary, help: evalHelp, run: evaluate },
  { name: 'sample', summary: sampleSummary, help: sampleHelp, run: sample },
  { name: 'grad', summary: gradSummary, help: gradHelp, run: grad },
  { name: 'ledger', summary: ledgerSummary, help: ledgerHelp, run: ledger },
  { name: 'simulate', summary: simulateSummary, help: simulateHelp, run: simulate },
];

export function findCommand(name: string): Command | undefined {
  return commands.find((c) => c.name === name);
}

/** `tabswarm --help`: one line per command, names aligned. */
export function usage(): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: tabswarm <command> [flags]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    "`tabswarm <command> --help` prints a command's flags.",
  ].join('\n');
}

/** The README's CLI reference table (between its `cli-commands` markers; tests/cli/help.test.ts keeps them equal). */
export function readmeReference(): string {
  return [
    '| command | what it does |',
    '| --- | --- |',
    ...commands.map((c) => `| \`tabswarm ${c.name}\` | ${c.summary.replace(/\|/g, '\\|')} |`),
  ].join('\n');
}

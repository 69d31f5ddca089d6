// The `tabswarm` command line. Each subcommand lives in its own file; src/cli/commands.ts lists them.
import { UsageError } from './args';
import { findCommand, usage } from './commands';

export { usage };

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    // `tabswarm help demo` is `tabswarm demo --help`.
    const asked = cmd === 'help' && rest[0] ? findCommand(rest[0]) : undefined;
    if (asked) {
      console.log(asked.help);
      return 0;
    }
    console.log(usage());
    return cmd ? 0 : 2;
  }
  const c = findCommand(cmd);
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

// Progress for the CLI's long waits, on stderr: a cli-progress bar when the total is known (matmul tuning), a
// log-update line with the elapsed time when it is not (building the pages, collecting the weights). Only on a terminal: in a log or a
// test the commands' ordinary lines ("built the pages in 12.3 s", "[tune] ...") say the same thing.
import cliProgress from 'cli-progress';
import { createLogUpdate } from 'log-update';

export interface Progress {
  /** Sets the count done and, optionally, a short note (e.g. the shape being timed). */
  update(done: number, note?: string): void;
  stop(): void;
}

const stderrIsTty = (): boolean => process.stderr.isTTY === true;

/** A bar of `total` steps on a terminal's stderr; null elsewhere (the caller logs lines instead). */
export function progressBar(label: string, total: number, unit: string): Progress | null {
  if (!stderrIsTty() || total <= 0) return null;
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {value}/{total} ${unit} | {duration_formatted} | {note}`,
      hideCursor: false,
      clearOnComplete: false,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { note: '' });
  return {
    update: (done, note) => bar.update(done, note === undefined ? {} : { note }),
    stop: () => bar.stop(),
  };
}

/**
 * Runs `work` with "<label> ... 12 s" kept up to date on a terminal's stderr (log-update: it erases its own line
 * relative to the cursor, so lines printed meanwhile are never overwritten). Lines `work` logs through the function it
 * is given go above that line; off a terminal they go to `log` as is.
 */
export async function withElapsed<T>(label: string, log: (s: string) => void, work: (log: (s: string) => void) => Promise<T>): Promise<T> {
  if (!stderrIsTty()) return work(log);
  const line = createLogUpdate(process.stderr, { showCursor: true });
  const t0 = performance.now();
  const draw = () => line(`${label} ... ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  draw();
  const timer = setInterval(draw, 250);
  const above = (s: string) => {
    line.clear();
    log(s);
    draw();
  };
  try {
    return await work(above);
  } finally {
    clearInterval(timer);
    line.clear();
  }
}

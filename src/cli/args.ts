// Small helpers over node:util parseArgs: typed number flags with a clear error naming the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

export function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function num(values: Record<string, unknown>, name: string, fallback: number, opts: { int?: boolean; min?: number } = {}): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new UsageError(`--${name}: "${raw}" is not a number`);
  if (opts.int && !Number.isInteger(v)) throw new UsageError(`--${name}: "${raw}" is not an integer`);
  if (opts.min !== undefined && v < opts.min) throw new UsageError(`--${name}: ${v} is below ${opts.min}`);
  return v;
}

export function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function required(values: Record<string, unknown>, name: string): string {
  const v = str(values, name);
  if (!v) throw new UsageError(`--${name} is required`);
  return v;
}

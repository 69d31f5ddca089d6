#!/usr/bin/env node
// Runs a TypeScript entry in Node: tsx for TypeScript, plus a loader so `*.wgsl?raw` imports give the shader text.
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

register('./wgsl-loader.mjs', import.meta.url);
const { register: registerTsx } = await import('tsx/esm/api');
registerTsx();
const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: run-ts.mjs <entry.ts> [args...]');
  process.exit(2);
}
process.argv = [process.argv[0], resolve(entry), ...rest];
await import(pathToFileURL(resolve(entry)).href);

#!/usr/bin/env node
// The `tabswarm` command: runs src/cli/main.ts through tsx with the WGSL text loader.
import { register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

register('./wgsl-loader.mjs', import.meta.url);
const { register: registerTsx } = await import('tsx/esm/api');
registerTsx();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { main } = await import(pathToFileURL(join(root, 'src/cli/main.ts')).href);
process.exitCode = await main(process.argv.slice(2));

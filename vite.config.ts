import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// Pages: index.html (contributor). Workers are ES modules. WGSL shaders are imported as text with `?raw`.
export default defineConfig({
  root: __dirname,
  publicDir: 'public',
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    outDir: 'dist',
    rollupOptions: { input: { index: resolve(__dirname, 'index.html'), coordinator: resolve(__dirname, 'coordinator.html') } },
  },
});

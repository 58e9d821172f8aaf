// Bundles the relay alone into dist/relay/main.cjs, run with plain `node` by the benchmark (no TypeScript
// loader at run time: smaller and faster to start; the benchmark measures the relay's RSS this way).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
await mkdir(path.join(root, 'dist', 'relay'), { recursive: true });
await build({
  entryPoints: [path.join(root, 'relay', 'main.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: path.join(root, 'dist', 'relay', 'main.cjs'),
  logLevel: 'warning',
  legalComments: 'none',
});
console.log('built dist/relay/main.cjs');

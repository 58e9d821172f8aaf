// Bundles the hosts-updater into one ES module: dist/hosts-updater.js (the DaemonSet runs
// `node dist/hosts-updater.js`). npm packages stay external: the image has node_modules (`npm ci --omit=dev`).
// Usage: node infra/hosts-updater/build.mjs [outfile]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const outfile = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'hosts-updater.js'));
await build({
  entryPoints: [path.join(root, 'relay', 'hosts-updater', 'main.ts')],
  bundle: true,
  packages: 'external',
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile,
  logLevel: 'warning',
  legalComments: 'none',
});
console.log(`built ${path.relative(root, outfile)}`);

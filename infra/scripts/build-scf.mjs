// Bundles the SCF entry point into one CommonJS file for SCF's Nodejs18.15 runtime: dist/scf/index.js
// (handler `index.main_handler`). The folder gets its own package.json with "type": "commonjs", since the
// repository's "type": "module" would otherwise make Node load index.js as an ES module.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = path.join(root, 'dist', 'scf');
await mkdir(outdir, { recursive: true });
await build({
  entryPoints: [path.join(root, 'functions', 'scf', 'index.ts')],
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  outfile: path.join(outdir, 'index.js'),
  logLevel: 'warning',
  legalComments: 'none',
});
await writeFile(
  path.join(outdir, 'package.json'),
  `${JSON.stringify({ type: 'commonjs', private: true }, null, 2)}\n`,
);
console.log(`built ${path.relative(root, path.join(outdir, 'index.js'))}`);

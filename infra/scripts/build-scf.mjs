// Builds the Tencent SCF package in dist/scf: the entry point bundled into one CommonJS file for SCF's
// Nodejs18.15 runtime (index.js, handler `index.main_handler`) and the files serverless.yml points at, which
// SCF serves from /var/user (the package's root):
//   SCF_KUBECONFIG=<file>  → dist/scf/kubeconfig   (serverless.yml: KUBECONFIG=/var/user/kubeconfig)
//   SCF_FLEET_FILE=<file>  → dist/scf/fleet.yaml   (deploy with FLEET_FILE=/var/user/fleet.yaml)
// The folder gets its own package.json with "type": "commonjs", since the repository's "type": "module"
// would otherwise make Node load index.js as an ES module.

import { existsSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = path.resolve(process.env.SCF_OUT_DIR || path.join(root, 'dist', 'scf'));
await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
await build({
  entryPoints: [path.join(root, 'functions', 'scf', 'index.ts')],
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  outfile: path.join(outdir, 'index.js'),
  keepNames: true,
  logLevel: 'warning',
  legalComments: 'none',
});
await writeFile(
  path.join(outdir, 'package.json'),
  `${JSON.stringify({ type: 'commonjs', private: true }, null, 2)}\n`,
);
const packaged = [];
for (const [variable, name] of [
  ['SCF_KUBECONFIG', 'kubeconfig'],
  ['SCF_FLEET_FILE', 'fleet.yaml'],
]) {
  const from = process.env[variable];
  if (!from) continue;
  if (!existsSync(from)) {
    console.error(`build:scf: ${variable}=${from} does not exist`);
    process.exit(1);
  }
  await copyFile(from, path.join(outdir, name));
  packaged.push(`${name} (from ${variable})`);
}
console.log(
  `built ${path.relative(root, path.join(outdir, 'index.js'))}` +
    (packaged.length > 0 ? ` with ${packaged.join(', ')}` : '') +
    (process.env.SCF_KUBECONFIG
      ? ''
      : '\nnote: no kubeconfig packaged (SCF_KUBECONFIG=<file>): serverless.yml points KUBECONFIG at /var/user/kubeconfig, so the function refuses to start until the package has one'),
);

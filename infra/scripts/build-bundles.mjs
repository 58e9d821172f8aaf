// Bundles every entry point of the container image into self-contained CommonJS files (all npm packages
// inlined, so the image's runtime stage needs no node_modules and no TypeScript loader):
//   relay.cjs          relay/main.ts                 the relay Deployment
//   functions.cjs      functions/cli.ts              the functions worker Deployment and the CLI
//   hosts-updater.cjs  hosts-updater/main.ts         the hosts-updater DaemonSet
//   webhook.cjs        webhook/main.ts               the admission webhook Deployment
// The Dockerfile runs this in its build stage; tests run it to boot the same files.
// Usage: node infra/scripts/build-bundles.mjs [outdir]   (default dist/image)
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const ENTRY_POINTS = {
  relay: 'relay/main.ts',
  functions: 'functions/cli.ts',
  'hosts-updater': 'hosts-updater/main.ts',
  webhook: 'webhook/main.ts',
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function buildBundles(outdir) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const result = await build({
    entryPoints: Object.entries(ENTRY_POINTS).map(([out, entry]) => ({ in: path.join(root, entry), out })),
    outdir,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // Stack traces and pino's error serializer keep class names (ApiException, TerminalError...).
    keepNames: true,
    minifyWhitespace: true,
    logLevel: 'warning',
    legalComments: 'none',
    metafile: true,
  });
  return Object.keys(result.metafile.outputs).map((f) => path.relative(outdir, path.resolve(root, f)));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outdir = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'image'));
  const files = await buildBundles(outdir);
  console.log(`built ${files.join(', ')} in ${outdir}`);
}

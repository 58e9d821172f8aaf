import path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../infra/local/paths.js';
import { ENTRY_POINTS } from '../../../infra/scripts/build-bundles.mjs';

// The relay, the webhook and the hosts-updater run on the light transport (docs/adr-016-light-transport.md):
// one value import of @kubernetes/client-node anywhere in what they load would put all of it (≈ 70 MiB of
// RSS) back into their bundles. Type-only imports are fine: esbuild drops them.

async function inputsOf(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [path.join(REPO_ROOT, entry)],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    write: false,
    metafile: true,
    logLevel: 'silent',
    outfile: 'out.cjs',
  });
  return Object.keys(result.metafile.inputs);
}

describe('bundle contents', () => {
  it.each(['relay', 'webhook', 'hosts-updater'] as const)(
    '%s does not contain @kubernetes/client-node',
    async (name) => {
      const inputs = await inputsOf(ENTRY_POINTS[name] ?? name);
      expect(inputs.length).toBeGreaterThan(10);
      expect(inputs.filter((f) => f.includes('@kubernetes/client-node'))).toEqual([]);
    },
    30_000,
  );

  it('the functions still do (the check above can fail)', async () => {
    const inputs = await inputsOf(ENTRY_POINTS.functions ?? 'functions');
    expect(inputs.some((f) => f.includes('@kubernetes/client-node'))).toBe(true);
  }, 30_000);
});

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkArchitecture, importsOf, readGraph } from '../../../infra/scripts/check-architecture.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const work = mkdtempSync(path.join(os.tmpdir(), 'arch-check-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(work, 'tree-'));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  return root;
}

describe('the architecture check', () => {
  it('passes on this repository', () => {
    expect(checkArchitecture(readGraph(repoRoot))).toEqual([]);
  });

  it('reads value, type, side-effect, re-export and dynamic imports, not commented-out ones', () => {
    const text = [
      "import { a } from './a.js';",
      "import type {\n  B,\n  C,\n} from '../b.js';",
      "import 'node:fs';",
      "export * from './d.js';",
      "const e = await import('./e.js');",
      "// import { f } from './f.js';",
      "/* import { g } from './g.js'; */",
    ].join('\n');
    expect(importsOf(text)).toEqual(['./a.js', '../b.js', 'node:fs', './d.js', './e.js']);
  });

  it('fails on a relay file importing functions/, on shared/ importing a part, and on the reverse', () => {
    const root = tree({
      'relay/bad.ts': "import { plan } from '../functions/core/plan.js';\n",
      'functions/core/plan.ts': 'export const plan = 1;\n',
      'functions/runtime/uses-relay.ts': "import type { X } from '../../relay/bad.js';\n",
      'shared/helper.ts': "import { plan } from '../functions/core/plan.js';\n",
    });
    expect(checkArchitecture(readGraph(root))).toEqual([
      'relay/bad.ts imports functions/core/plan.ts: relay/ and functions/ never import each other (share through shared/)',
      'functions/runtime/uses-relay.ts imports relay/bad.ts: functions/ and relay/ never import each other (share through shared/)',
      'shared/helper.ts imports functions/core/plan.ts: shared/ imports no part',
    ]);
  });

  it('fails when the core reaches an adapter or, through shared/, a client package', () => {
    const root = tree({
      'functions/core/reconcile.ts':
        "import { KubeCluster } from '../adapters/kube.js';\nimport { q } from '../../shared/queue.js';\n",
      'functions/adapters/kube.ts': "import { CoreV1Api } from '@kubernetes/client-node';\n",
      'shared/queue.ts': "import { Queue } from 'bullmq';\nexport const q = Queue;\n",
    });
    expect(checkArchitecture(readGraph(root))).toEqual([
      'functions/core/reconcile.ts imports functions/adapters/kube.ts: functions/core/ imports only itself and shared/',
      'functions/adapters/kube.ts imports @kubernetes/client-node (reached from functions/core/reconcile.ts): the core imports no client or SDK (use a port)',
      'shared/queue.ts imports bullmq (reached from functions/core/reconcile.ts): the core imports no client or SDK (use a port)',
    ]);
  });

  it('fails on a cycle, type-only imports included', () => {
    const root = tree({
      'shared/a.ts': "import type { B } from './b.js';\nexport type A = B;\n",
      'shared/b.ts': "import { c } from './c.js';\nexport type B = number;\n",
      'shared/c.ts': "import type { A } from './a.js';\nexport const c = 1;\n",
    });
    expect(checkArchitecture(readGraph(root))).toEqual([
      'import cycle: shared/a.ts → shared/b.ts → shared/c.ts → shared/a.ts',
    ]);
  });
});

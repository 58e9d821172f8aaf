// The architecture check (part of `npm run check`, so of `npm test`): the rules of docs/adr-014-layout.md over
// the import graph of the shipped code (relay/, functions/, webhook/, hosts-updater/, shared/).
//   1. A part never imports another part; every part may import shared/.
//   2. shared/ imports no part.
//   3. functions/core/ imports only functions/core/ and shared/ (no adapter, runtime or entry point), and
//      nothing reachable from it imports a client or SDK (Kubernetes, BullMQ, Redis, Tencent Cloud,
//      prom-client, HTTP servers): the core is pure logic over ports.
//   4. No cycles. Type-only imports count everywhere: they are still a dependency of the reader.
// Usage: node infra/scripts/check-architecture.mjs [root]   (exit 1 and one line per violation)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PARTS = ['relay', 'functions', 'webhook', 'hosts-updater', 'shared'];
const CORE = 'functions/core/';
export const CLIENT_PACKAGES = [
  '@kubernetes/client-node',
  'bullmq',
  'ioredis',
  'tencentcloud-sdk-nodejs',
  'prom-client',
  'node:http',
  'node:https',
  'node:http2',
];

const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function listSources(root, dir) {
  let out = [];
  let entries;
  try {
    entries = readdirSync(path.join(root, dir));
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === 'node_modules') continue;
    const rel = `${dir}/${name}`;
    if (statSync(path.join(root, rel)).isDirectory()) out = out.concat(listSources(root, rel));
    else if (/\.(ts|mts|cts)$/.test(name) && !/\.d\.[mc]?ts$/.test(name)) out.push(rel);
  }
  return out;
}

/** Import specifiers of a source text (comments removed first, so a commented-out import does not count). */
export function importsOf(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const specs = [];
  for (const m of code.matchAll(IMPORT)) specs.push(m[1] ?? m[2] ?? m[3]);
  return specs;
}

function partOf(file) {
  return PARTS.find((p) => file.startsWith(`${p}/`));
}

function packageOf(spec) {
  if (spec.startsWith('node:')) return spec;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Resolves a relative specifier (`./x.js` → `x.ts`) against the importing file; undefined when not ours. */
function resolveLocal(from, spec, known) {
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const candidate of [
    joined,
    joined.replace(/\.js$/, '.ts'),
    joined.replace(/\.mjs$/, '.mts'),
    `${joined}.ts`,
    `${joined}/index.ts`,
  ]) {
    if (known.has(candidate)) return candidate;
  }
  return joined;
}

/** The import graph of the parts under `root`: file → { local: resolved files, packages }. */
export function readGraph(root, read = (file) => readFileSync(path.join(root, file), 'utf8')) {
  const files = PARTS.flatMap((p) => listSources(root, p));
  const known = new Set(files);
  const graph = new Map();
  for (const file of files) {
    const local = [];
    const packages = [];
    for (const spec of importsOf(read(file))) {
      if (spec.startsWith('.')) local.push(resolveLocal(file, spec, known));
      else packages.push(packageOf(spec));
    }
    graph.set(file, { local, packages });
  }
  return graph;
}

function findCycles(graph) {
  const cycles = [];
  const state = new Map(); // 1: on the stack, 2: done
  const stack = [];
  const visit = (file) => {
    state.set(file, 1);
    stack.push(file);
    for (const next of graph.get(file)?.local ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 1) cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 2);
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}

/** Every violation of the rules, as one line each (empty: the layout holds). */
export function checkArchitecture(graph) {
  const problems = [];
  for (const [file, { local }] of graph) {
    const from = partOf(file);
    for (const target of local) {
      const to = partOf(target);
      if (!to) {
        problems.push(`${file} imports ${target}: outside the parts (${PARTS.join(', ')})`);
        continue;
      }
      if (from === 'shared' && to !== 'shared')
        problems.push(`${file} imports ${target}: shared/ imports no part`);
      else if (from !== to && to !== 'shared')
        problems.push(
          `${file} imports ${target}: ${from}/ and ${to}/ never import each other (share through shared/)`,
        );
      if (file.startsWith(CORE) && to === 'functions' && !target.startsWith(CORE))
        problems.push(`${file} imports ${target}: functions/core/ imports only itself and shared/`);
    }
  }
  // Rule 3: what the core reaches, transitively.
  const reached = new Map(); // file → the core file it was reached from
  const queue = [...graph.keys()].filter((f) => f.startsWith(CORE));
  for (const f of queue) reached.set(f, f);
  while (queue.length > 0) {
    const file = queue.shift();
    for (const next of graph.get(file)?.local ?? []) {
      if (graph.has(next) && !reached.has(next)) {
        reached.set(next, reached.get(file));
        queue.push(next);
      }
    }
  }
  for (const [file, origin] of reached) {
    for (const pkg of graph.get(file).packages) {
      if (CLIENT_PACKAGES.includes(pkg)) {
        const via = file === origin ? '' : ` (reached from ${origin})`;
        problems.push(`${file} imports ${pkg}${via}: the core imports no client or SDK (use a port)`);
      }
    }
  }
  for (const cycle of findCycles(graph)) problems.push(`import cycle: ${cycle.join(' → ')}`);
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(
    process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..'),
  );
  const graph = readGraph(root);
  const problems = checkArchitecture(graph);
  if (problems.length > 0) {
    for (const p of problems) console.error(`architecture: ${p}`);
    console.error(`architecture: ${problems.length} violation(s) in ${graph.size} files`);
    process.exit(1);
  }
  console.log(`architecture: ${graph.size} files, parts ${PARTS.join(', ')}: no cross-part import, no cycle`);
}

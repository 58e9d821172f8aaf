// `node bench/top-functions.mjs <file.cpuprofile> [N]`: self time per function (and per package) of a V8 CPU
// profile written by `node --cpu-prof`, to name the hot spots behind a benchmark number.
import { readFileSync } from 'node:fs';

const [file, n = '25'] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map();
const dt = profile.timeDeltas;
for (let i = 0; i < profile.samples.length; i++)
  self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
const fn = new Map();
const pkg = new Map();
let total = 0;
for (const [id, us] of self) {
  const cf = byId.get(id).callFrame;
  total += us;
  const where = cf.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/work\/main\//, '');
  const key = `${cf.functionName || '(anonymous)'}  ${where}:${cf.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  const p = cf.url.includes('node_modules/')
    ? cf.url
        .split('node_modules/')[1]
        .split('/')
        .slice(0, cf.url.split('node_modules/')[1].startsWith('@') ? 2 : 1)
        .join('/')
    : cf.url
      ? cf.url.startsWith('node:')
        ? 'node internals'
        : 'tcr-assistant'
      : cf.functionName || '(vm)';
  pkg.set(p, (pkg.get(p) ?? 0) + us);
}
const show = (m, count) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(
      ([k, us]) =>
        `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1e6).toFixed(2).padStart(7)} s  ${k}`,
    )
    .join('\n');
console.log(
  `total sampled ${(total / 1e6).toFixed(1)} s\n\nby package:\n${show(pkg, 12)}\n\nby function:\n${show(fn, Number(n))}`,
);

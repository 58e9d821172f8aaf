/** A small SVG line chart: cumulative namespaces converged (y) over seconds (x), one line per series. */
export function renderChart(series: { label: string; points: [number, number][] }[], title: string): string {
  const W = 760;
  const H = 420;
  const pad = { l: 60, r: 180, t: 40, b: 45 };
  const maxX = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const maxY = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const x = (v: number) => pad.l + (v / maxX) * (W - pad.l - pad.r);
  const y = (v: number) => H - pad.b - (v / maxY) * (H - pad.t - pad.b);
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
  const lines = series.map((s, i) => {
    const step = Math.max(1, Math.floor(s.points.length / 400));
    const pts = s.points.filter((_, j) => j % step === 0 || j === s.points.length - 1);
    const d = pts
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
      .join(' ');
    const c = colors[i % colors.length];
    return `<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${s.label.startsWith('floor') ? ' stroke-dasharray="6 4"' : ''}/>
<text x="${W - pad.r + 10}" y="${pad.t + 18 * i}" fill="${c}" font-size="12">${s.label}</text>`;
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map(
    (f) =>
      `<text x="${x(f * maxX)}" y="${H - pad.b + 18}" font-size="11" text-anchor="middle">${(f * maxX).toFixed(0)}s</text>` +
      `<text x="${pad.l - 8}" y="${y(f * maxY) + 4}" font-size="11" text-anchor="end">${Math.round(f * maxY)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.l}" y="22" font-size="14">${title}</text>
<line x1="${pad.l}" y1="${H - pad.b}" x2="${W - pad.r}" y2="${H - pad.b}" stroke="#333"/>
<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" stroke="#333"/>
${ticks.join('\n')}
${lines.join('\n')}
</svg>
`;
}

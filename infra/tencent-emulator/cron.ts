// SCF timer triggers' cron: seven fields, `second minute hour day-of-month month day-of-week year`, e.g.
// `0 */1 * * * * *` (every minute, at second 0). Each field: `*`, `n`, `a-b`, `*/s`, `a-b/s`, or a comma list
// of those; months and weekdays also by name (JAN, MON). Evaluated in UTC (the emulator's clock; SCF's is
// the region's, UTC+8 in mainland China: only the hour and day fields would differ).

const FIELDS = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 6 },
  { name: 'year', min: 1970, max: 2199 },
] as const;
const NAMES: Record<string, number> = {
  JAN: 1,
  FEB: 2,
  MAR: 3,
  APR: 4,
  MAY: 5,
  JUN: 6,
  JUL: 7,
  AUG: 8,
  SEP: 9,
  OCT: 10,
  NOV: 11,
  DEC: 12,
  SUN: 0,
  MON: 1,
  TUE: 2,
  WED: 3,
  THU: 4,
  FRI: 5,
  SAT: 6,
};

export type CronSchedule = ReadonlyArray<ReadonlySet<number>>;

function parseField(text: string, field: (typeof FIELDS)[number]): Set<number> {
  const values = new Set<number>();
  const value = (v: string) => {
    const n = /^\d+$/.test(v) ? Number(v) : NAMES[v.toUpperCase()];
    if (n === undefined || n < field.min || n > field.max)
      throw new Error(`cron ${field.name}: "${v}" is not in ${field.min}-${field.max}`);
    return n;
  };
  for (const part of text.split(',')) {
    const [range = '', stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new Error(`cron ${field.name}: bad step in "${part}"`);
    let from: number = field.min;
    let to: number = field.max;
    if (range !== '*' && range !== '?') {
      const [a = '', b] = range.split('-');
      from = value(a);
      to = b === undefined ? (stepText === undefined ? from : field.max) : value(b);
    }
    for (let n = from; n <= to; n += step) values.add(n);
  }
  return values;
}

/** Parses a seven-field SCF cron expression; throws naming the field that is wrong. */
export function parseScfCron(expression: string): CronSchedule {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 7)
    throw new Error(`cron "${expression}": SCF timers take 7 fields (second … year), got ${parts.length}`);
  return parts.map((p, i) => parseField(p, FIELDS[i] as (typeof FIELDS)[number]));
}

function matches(schedule: CronSchedule, d: Date): boolean {
  const fields = [
    d.getUTCSeconds(),
    d.getUTCMinutes(),
    d.getUTCHours(),
    d.getUTCDate(),
    d.getUTCMonth() + 1,
    d.getUTCDay(),
    d.getUTCFullYear(),
  ];
  return fields.every((v, i) => schedule[i]?.has(v));
}

/** The first whole second strictly after `after` (epoch ms) that the schedule fires at; undefined within a year. */
export function nextFire(schedule: CronSchedule, after: number): number | undefined {
  let t = Math.floor(after / 1000) * 1000 + 1000;
  for (let i = 0; i < 366 * 24 * 3600; i++, t += 1000) if (matches(schedule, new Date(t))) return t;
  return undefined;
}

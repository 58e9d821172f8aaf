// A rotation measured in rounds (issue #15, "rotation ≤ 1.15× the floor"). One rotation of each side in a fixed
// order (ours, then the bare floor, then the floor in our shape) put every side in the same slot every run: ours
// always right after the shaped floor's creates, the floor always while our CR job was still finishing. On 2
// shared cores a single shot of ~1–13 s swung the ratio by ±0.2 between runs. So each side rotates once per
// round, the order turns by one every round (each side goes first, second and last once in three rounds), and
// the figure is the median of each side's rounds. Pure: no clock, no client.

export type RotationSide = 'ours' | 'floor' | 'floorOurShape';
export const ROTATION_SIDES: readonly RotationSide[] = ['ours', 'floor', 'floorOurShape'];

/** Round `round`'s order (0-based): the sides turned left by `round`. */
export function rotationOrder(round: number): RotationSide[] {
  const k = ((round % ROTATION_SIDES.length) + ROTATION_SIDES.length) % ROTATION_SIDES.length;
  return [...ROTATION_SIDES.slice(k), ...ROTATION_SIDES.slice(0, k)];
}

export type RotationRounds = Record<RotationSide, number[]>;

export interface RotationSummary {
  secrets: number;
  /** Median of each side's rounds (ms). */
  oursMs: number;
  floorMs: number;
  floorOurShapeMs: number;
  /** Ours / the bare floor, medians: the figure the target is stated in. */
  ratio: number;
  /** Ours / the floor in our shape: what our pipeline costs. */
  ratioToOurShape: number;
  /** The floor in our shape / the bare one: what our Secret's shape costs. */
  shapeCost: number;
  /** Every round's time per side, in the order the rounds ran (ms). */
  rounds: RotationRounds;
  /** Ours / the bare floor in each round, to show the spread behind the median. */
  roundRatios: number[];
  /** CPU seconds per process during each side's rotation, median over the rounds: where a gap goes. */
  cpuSeconds?: Record<RotationSide, CpuSample>;
}

/** CPU seconds per process (kube-apiserver, etcd, the benchmark's own process, ...). */
export type CpuSample = Record<string, number>;

/** What each process spent between two readings (a process missing from `before` counts from 0). */
export function diffCpu(before: CpuSample, after: CpuSample): CpuSample {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, +(v - (before[k] ?? 0)).toFixed(2)]));
}

/** Per process, the median over the samples (a process absent from a sample spent 0 in it). */
export function medianCpu(samples: CpuSample[]): CpuSample {
  const keys = [...new Set(samples.flatMap((s) => Object.keys(s)))].sort();
  return Object.fromEntries(keys.map((k) => [k, +median(samples.map((s) => s[k] ?? 0)).toFixed(2)]));
}

/** The middle value; the mean of the two middle ones for an even count (the benchmark's nearest-rank
 * `percentile` would pick the lower one, i.e. one side's luckier round). */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return Number.isInteger(mid)
    ? ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
    : (sorted[Math.floor(mid)] as number);
}

export function summariseRotation(
  secrets: number,
  rounds: RotationRounds,
  cpu?: Record<RotationSide, CpuSample[]>,
): RotationSummary {
  const count = rounds.ours.length;
  if (count === 0 || ROTATION_SIDES.some((s) => rounds[s].length !== count))
    throw new Error(
      `rotation rounds: every side needs the same number of rounds, got ${ROTATION_SIDES.map((s) => `${s} ${rounds[s].length}`).join(', ')}`,
    );
  const oursMs = median(rounds.ours);
  const floorMs = median(rounds.floor);
  const floorOurShapeMs = median(rounds.floorOurShape);
  const ratio = (a: number, b: number) => +(a / b).toFixed(3);
  return {
    secrets,
    oursMs: Math.round(oursMs),
    floorMs: Math.round(floorMs),
    floorOurShapeMs: Math.round(floorOurShapeMs),
    ratio: ratio(oursMs, floorMs),
    ratioToOurShape: ratio(oursMs, floorOurShapeMs),
    shapeCost: ratio(floorOurShapeMs, floorMs),
    rounds: {
      ours: rounds.ours.map(Math.round),
      floor: rounds.floor.map(Math.round),
      floorOurShape: rounds.floorOurShape.map(Math.round),
    },
    roundRatios: rounds.ours.map((o, i) => ratio(o, rounds.floor[i] as number)),
    ...(cpu
      ? {
          cpuSeconds: {
            ours: medianCpu(cpu.ours),
            floor: medianCpu(cpu.floor),
            floorOurShape: medianCpu(cpu.floorOurShape),
          },
        }
      : {}),
  };
}

import { describe, expect, it } from 'vitest';
import { diffCpu, median, medianCpu, rotationOrder, summariseRotation } from '../../bench/rotation-rounds.js';

describe('rotationOrder', () => {
  it('turns the order by one each round, so each side takes each slot once in three rounds', () => {
    const rounds = [0, 1, 2].map(rotationOrder);
    expect(rounds).toEqual([
      ['ours', 'floor', 'floorOurShape'],
      ['floor', 'floorOurShape', 'ours'],
      ['floorOurShape', 'ours', 'floor'],
    ]);
    for (const slot of [0, 1, 2]) expect(new Set(rounds.map((r) => r[slot])).size).toBe(3);
  });
  it('repeats every three rounds', () => {
    expect(rotationOrder(3)).toEqual(rotationOrder(0));
    expect(rotationOrder(5)).toEqual(rotationOrder(2));
  });
});

describe('median', () => {
  it.each([
    [[5], 5],
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
    [[10, 10, 1000], 10],
  ])('median of %j is %d', (values, want) => expect(median(values)).toBe(want));
  it('refuses no values', () => expect(() => median([])).toThrow(/no values/));
});

describe('summariseRotation', () => {
  it('states every ratio on the medians and keeps each round', () => {
    const s = summariseRotation(1000, {
      ours: [1800, 1500, 1650],
      floor: [1300, 1400, 1200],
      floorOurShape: [1700, 1600, 1500],
    });
    expect(s).toMatchObject({
      secrets: 1000,
      oursMs: 1650,
      floorMs: 1300,
      floorOurShapeMs: 1600,
      ratio: 1.269,
      ratioToOurShape: 1.031,
      shapeCost: 1.231,
      roundRatios: [1.385, 1.071, 1.375],
    });
    expect(s.rounds.floor).toEqual([1300, 1400, 1200]);
  });
  it('one slow round of one side does not move the figure', () => {
    const calm = summariseRotation(6000, {
      ours: [9000, 9100, 9200],
      floor: [8000, 8100, 8200],
      floorOurShape: [8500, 8500, 8500],
    });
    const spiky = summariseRotation(6000, {
      ours: [9000, 15000, 9100],
      floor: [8000, 8100, 8200],
      floorOurShape: [8500, 8500, 8500],
    });
    expect(spiky.ratio).toBe(calm.ratio);
  });
  it('names the sides whose rounds are missing', () => {
    expect(() => summariseRotation(10, { ours: [1, 2], floor: [1], floorOurShape: [1, 2] })).toThrow(
      /ours 2, floor 1/,
    );
    expect(() => summariseRotation(10, { ours: [], floor: [], floorOurShape: [] })).toThrow(
      /same number of rounds/,
    );
  });
});

describe('CPU per side', () => {
  it('diffs two readings, counting a process that appeared from zero', () => {
    expect(
      diffCpu({ 'kube-apiserver': 10.5, etcd: 2 }, { 'kube-apiserver': 11.75, etcd: 2.3, bench: 0.4 }),
    ).toEqual({
      'kube-apiserver': 1.25,
      etcd: 0.3,
      bench: 0.4,
    });
  });
  it('takes each process median over the rounds, a missing process counting 0', () => {
    expect(medianCpu([{ a: 1, b: 5 }, { a: 3 }, { a: 2, b: 4 }])).toEqual({ a: 2, b: 4 });
  });
  it('is reported per side when given', () => {
    const one = { 'kube-apiserver': 1 };
    const s = summariseRotation(
      1,
      { ours: [1], floor: [1], floorOurShape: [1] },
      { ours: [{ 'kube-apiserver': 2 }], floor: [one], floorOurShape: [one] },
    );
    expect(s.cpuSeconds).toEqual({ ours: { 'kube-apiserver': 2 }, floor: one, floorOurShape: one });
    expect(summariseRotation(1, { ours: [1], floor: [1], floorOurShape: [1] }).cpuSeconds).toBeUndefined();
  });
});

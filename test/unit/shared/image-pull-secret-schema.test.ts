import { describe, expect, it } from 'vitest';
import { findSpecProblems, matchesNameRule } from '../../../shared/contracts/image-pull-secret.js';
import { crCases } from '../../fixtures/cr-cases.js';

describe('ImagePullSecret zod schema', () => {
  it.each(crCases)('$title', ({ name, spec, invalid }) => {
    const problems = findSpecProblems({ metadata: { name: name ?? 'sample' }, spec });
    if (!invalid) {
      expect(problems).toEqual([]);
      return;
    }
    const named = problems.filter((p) => p.field === invalid.field);
    expect(named, `problems: ${JSON.stringify(problems)}`).not.toHaveLength(0);
    expect(named.map((p) => p.message).join('; ')).toMatch(invalid.reason);
  });
});

describe('matchesNameRule', () => {
  it.each([
    ['*', 'anything', true],
    ['', 'anything', true],
    [undefined, 'anything', true],
    ['a,b', 'b', true],
    ['a,b', 'c', false],
    ['team-a', 'team', false],
    ['team', 'team-a', false],
  ] as const)('rule %j matches %j: %j', (rule, name, expected) => {
    expect(matchesNameRule(rule, name)).toBe(expected);
  });
});

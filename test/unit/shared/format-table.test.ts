import { describe, expect, it } from 'vitest';
import { formatTable } from '../../../shared/kube/table.js';

describe('formatTable', () => {
  const columnDefinitions = [
    { name: 'Name', type: 'string', priority: 0 },
    { name: 'NAMESPACES', type: 'string' },
    { name: 'Age', type: 'date', priority: 1 },
    { name: 'SECRETS-DESIRED', type: 'integer' },
  ];

  it('pads columns like kubectl, hides priority > 0 and shows <none> for missing values', () => {
    const out = formatTable({
      kind: 'Table',
      columnDefinitions,
      rows: [
        { cells: ['imagepullsecret-sample', '*', '5m', 10] },
        { cells: ['b', 'team-a,team-b', '1m', null] },
      ],
    });
    expect(out.split('\n')).toEqual([
      'NAME                     NAMESPACES      SECRETS-DESIRED',
      'imagepullsecret-sample   *               10',
      'b                        team-a,team-b   <none>',
    ]);
  });

  it('says so when there are no rows', () => {
    expect(formatTable({ kind: 'Table', columnDefinitions, rows: [] })).toBe('No resources found');
  });
});

import { CustomObjectsApi, type KubeConfig, setHeaderOptions } from '@kubernetes/client-node';
import { z } from 'zod';

/** The API server's own printing (meta.k8s.io/v1 Table): what `kubectl get` shows, columns and all. */
export const Table = z.object({
  kind: z.literal('Table'),
  columnDefinitions: z.array(
    z.object({ name: z.string(), type: z.string(), priority: z.number().optional() }),
  ),
  rows: z.array(z.object({ cells: z.array(z.unknown()) })),
});
export type Table = z.infer<typeof Table>;

const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';

/** Lists cluster-scoped custom objects as a server-side Table (printer columns from the CRD). */
export async function getClusterCustomObjectTable(
  kc: KubeConfig,
  group: string,
  version: string,
  plural: string,
): Promise<Table> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const body = await api.listClusterCustomObject(
    { group, version, plural },
    setHeaderOptions('Accept', TABLE_ACCEPT),
  );
  return Table.parse(body);
}

/** Renders a Table the way kubectl does: upper-case headers, columns padded, priority > 0 hidden. */
export function formatTable(table: Table): string {
  const visible = table.columnDefinitions
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => (c.priority ?? 0) === 0);
  const header = visible.map(({ c }) => c.name.toUpperCase());
  const rows = table.rows.map((r) =>
    visible.map(({ i }) => {
      const v = r.cells[i];
      return v === undefined || v === null || v === '' ? '<none>' : String(v);
    }),
  );
  if (rows.length === 0) return 'No resources found';
  return renderColumns([header, ...rows]);
}

/**
 * The one table renderer (kubectl's look: columns padded to their widest cell, three spaces apart, no
 * trailing blanks). The first row is the header. Used for server-side Tables and the CLI's fleet view.
 */
export function renderColumns(rows: readonly (readonly string[])[]): string {
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((cells) =>
      cells
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

import { z } from 'zod';

// CAM policies (syntax 2.0) as the emulator applies them to a credential: the relay's key is allowed only
// `scf:Invoke` on its function, and the emulator refuses it anything else, as CAM would.

export const CamPolicy = z.object({
  version: z.literal('2.0'),
  statement: z
    .array(
      z.object({
        effect: z.enum(['allow', 'deny']),
        action: z.union([z.string(), z.array(z.string())]),
        resource: z.union([z.string(), z.array(z.string())]),
      }),
    )
    .min(1),
});
export type CamPolicy = z.infer<typeof CamPolicy>;

const list = (v: string | string[]) => (Array.isArray(v) ? v : [v]);
/** `*` matches any run of characters; matching ignores case for actions, as CAM does. */
function glob(pattern: string, value: string, ignoreCase = false): boolean {
  const source = pattern
    .split('*')
    .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, ignoreCase ? 'i' : '').test(value);
}

/** Whether `policy` lets `action` (`scf:Invoke`) act on `resource` (a qcs six-part string, or `*`). */
export function camAllows(policy: CamPolicy, action: string, resource: string): boolean {
  const hits = (effect: 'allow' | 'deny') =>
    policy.statement.some(
      (s) =>
        s.effect === effect &&
        list(s.action).some((a) => glob(a, action, true)) &&
        list(s.resource).some((r) => glob(r, resource)),
    );
  return !hits('deny') && hits('allow');
}

/** The resource of an SCF function: `qcs::scf:<region>:uin/<uin>:namespace/<namespace>/function/<name>`. */
export function scfFunctionResource(region: string, uin: string, namespace: string, name: string): string {
  return `qcs::scf:${region}:uin/${uin}:namespace/${namespace}/function/${name}`;
}

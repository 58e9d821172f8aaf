import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../../shared/contracts/labels.js';
import { SYSTEM_NAMESPACE } from '../../../shared/contracts/names.js';
import {
  type HostEntry,
  readDesiredHosts,
  UPDATER_CONFIG_MAP_NAME,
  UpdaterConfigDataSchema,
} from '../../../shared/contracts/updater-config.js';
import { throwIfAborted } from '../../../shared/deadline.js';
import { describeError, RetryableError, TerminalError } from '../../../shared/errors.js';
import type { ConfigMapView, CrView } from '../model.js';
import type { Action, PrivateEndpointsDeps, ReconcileResult } from '../ports.js';
import { resolveTencentCredential } from '../registry-tokens/tencent-credentials.js';
import { scrubMessage } from '../scrub.js';
import {
  type EndpointLookup,
  planPrivateEndpoints,
  registryKeyOf,
  wantsPrivateNetwork,
} from './plan-private-endpoints.js';

const OBJECT = `ConfigMap ${SYSTEM_NAMESPACE}/${UPDATER_CONFIG_MAP_NAME}`;

interface LookupFailure {
  registry: string;
  error: unknown;
}

/**
 * Looks up each distinct (registryId, region) once, with the API key of the first CR (by name) naming it.
 * A failure is kept per registry, so one bad key or unreachable region does not block the others.
 */
async function lookUpRegistries(
  deps: PrivateEndpointsDeps,
  wanted: readonly CrView[],
): Promise<{ lookups: Map<string, EndpointLookup>; failures: LookupFailure[] }> {
  const firstByRegistry = new Map<string, CrView>();
  // CRs whose own key source is usable first: one CR's bad credentialsSecretRef must not hide another's good one.
  const usable = (cr: CrView) => (cr.credentialProblem === undefined ? 0 : 1);
  for (const cr of [...wanted].sort((a, b) => usable(a) - usable(b) || (a.name < b.name ? -1 : 1))) {
    const tcr = cr.spec.tcr!;
    const key = registryKeyOf(tcr.registryId, tcr.region);
    if (!firstByRegistry.has(key)) firstByRegistry.set(key, cr);
  }
  const lookups = new Map<string, EndpointLookup>();
  const failures: LookupFailure[] = [];
  await Promise.all(
    [...firstByRegistry.entries()].map(async ([registry, cr]) => {
      const tcr = cr.spec.tcr!;
      let source = 'API key not resolved';
      try {
        const resolved = await resolveTencentCredential(tcr.credentialsSecretRef, deps);
        source = `API key from ${resolved.source}`;
        const endpoints = await deps.tcr.describeInternalEndpoints({
          registryId: tcr.registryId,
          region: tcr.region,
          credential: resolved.credential,
        });
        lookups.set(registry, { ok: true, endpoints });
      } catch (error) {
        const reason = scrubMessage(`ImagePullSecret ${cr.name} (${source}): ${describeError(error)}`);
        lookups.set(registry, { ok: false, reason });
        failures.push({ registry, error: withMessage(error, reason) });
      }
    }),
  );
  failures.sort((a, b) => (a.registry < b.registry ? -1 : 1));
  return { lookups, failures };
}

/** The same kind of error (terminal or retryable) with a message that names the CR and the key's source. */
function withMessage(error: unknown, message: string): Error {
  if (error instanceof TerminalError) return new TerminalError(message);
  return new RetryableError(message);
}

/** What the ConfigMap publishes now (for domains whose lookup fails this time). */
function publishedHosts(current: ConfigMapView | undefined): HostEntry[] {
  const desired = readDesiredHosts(current);
  return desired.state === 'enabled' ? desired.entries : [];
}

const sameData = (a: Record<string, string>, b: Record<string, string>) => {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k]);
};

/**
 * Keeps ConfigMap tcr-assistant-system/updater-config in line with the CRs that enable spec.privateNetwork:
 * read CRs and the ConfigMap → look up each registry's private endpoints → plan (pure) → write only when
 * the data changes (zero writes otherwise). Never touches a ConfigMap of that name without our label.
 * Lookups that fail keep their domains' published entries; the job then fails (retryable or terminal,
 * as the worst failure) after writing the rest, naming each registry.
 */
export async function refreshPrivateEndpoints(deps: PrivateEndpointsDeps): Promise<ReconcileResult> {
  const [crs, current] = await Promise.all([
    deps.cluster.listImagePullSecrets(),
    deps.configMaps.getConfigMap(UPDATER_CONFIG_MAP_NAME),
  ]);
  if (current && current.labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
    throw new TerminalError(
      `${OBJECT} exists but is not ours (no label ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}): refusing to change it; delete it or add the label to hand it over`,
    );
  }

  const { lookups, failures } = await lookUpRegistries(deps, crs.filter(wantsPrivateNetwork));
  throwIfAborted(deps.signal, OBJECT);
  const plan = planPrivateEndpoints({ crs, lookups, previous: publishedHosts(current) });
  // The contract's strict schema: a planner bug must fail here, not on every node.
  UpdaterConfigDataSchema.parse(plan.data);

  const detail = `enabled=${plan.enabled}, ${plan.hosts.length} host(s)`;
  const actions: Action[] = [];
  if (!current) {
    const created = await deps.configMaps.createConfigMap({
      name: UPDATER_CONFIG_MAP_NAME,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: {},
      data: plan.data,
    });
    if (created === 'exists') throw new RetryableError(`${OBJECT} was created concurrently; re-planning`);
    actions.push({ verb: 'created', object: OBJECT, detail });
  } else if (sameData(current.data, plan.data)) {
    actions.push({ verb: 'noop', object: OBJECT, detail });
  } else {
    await deps.configMaps.replaceConfigMap({ ...current, data: plan.data });
    actions.push({ verb: 'updated', object: OBJECT, detail });
  }
  for (const s of plan.skipped)
    actions.push({ verb: 'skipped', object: `ImagePullSecret ${s.cr}`, detail: s.reason });

  const log = deps.log.child({ configMap: OBJECT });
  for (const i of plan.ignoredEndpoints) log.warn(i, 'private endpoint ignored');
  log.info(
    {
      verb: actions[0]?.verb,
      enabled: plan.enabled,
      hosts: plan.hosts.map((h) => `${h.domain}=${h.ip}`),
      skipped: plan.skipped.length,
      kept: plan.kept.map((k) => k.domain),
    },
    'private endpoints refreshed',
  );

  if (failures.length > 0) {
    const reasons = failures.map((f) => describeError(f.error)).join('; ');
    const message = `private endpoints of ${failures.length} registry(ies) could not be looked up (their published entries are kept): ${reasons}`;
    if (failures.every((f) => f.error instanceof TerminalError)) throw new TerminalError(message);
    throw new RetryableError(message);
  }
  return { actions, crs: plan.crs };
}

import { CoreV1Api, CustomObjectsApi, type KubeConfig, Watch } from '@kubernetes/client-node';
import { z } from 'zod';
import { GROUP, PLURAL, VERSION } from '../contracts/names.js';
import { signalOptions } from './abort.js';
import {
  type Collection,
  type ListPage,
  type WatchEventType,
  WatchExpiredError,
  type WatchedObject,
} from './resource-watcher.js';

// Where each watched collection is listed and watched; each consumer adds what it looks at (keyOf,
// fingerprintOf) to make a ResourceSource. watchPathOf is the only place that opens a watch.

const PAGE = 500;
const RawList = z.object({
  items: z.array(z.unknown()),
  metadata: z.object({ resourceVersion: z.string(), continue: z.string().optional() }),
});

const typed = (list: {
  items: unknown[];
  metadata?: { resourceVersion?: string; _continue?: string };
}): ListPage => ({
  items: list.items as WatchedObject[],
  resourceVersion: list.metadata?.resourceVersion ?? '',
  continueToken: list.metadata?._continue,
});

export interface WatchSettings {
  /** Extra parameters, e.g. a labelSelector (the list must apply the same). */
  query?: Record<string, string>;
  /** How long the server keeps the watch open; default 5-10 minutes, spread so watches do not end together. */
  timeoutSeconds?: () => number;
}

/**
 * Watches one collection path with client-node (bookmarks on). An ERROR event or a 410 ends the watch with
 * WatchExpiredError (410) or an Error; aborting `signal` closes it and resolves.
 */
export function watchPathOf(kc: KubeConfig, path: string, settings: WatchSettings = {}): Collection['watch'] {
  return (resourceVersion, onEvent, signal) =>
    new Promise<void>((resolve, reject) => {
      let controller: AbortController | undefined;
      let settled = false;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        controller?.abort();
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => finish();
      if (signal.aborted) return finish();
      signal.addEventListener('abort', onAbort, { once: true });
      new Watch(kc)
        .watch(
          path,
          {
            ...settings.query,
            resourceVersion,
            allowWatchBookmarks: true,
            // The server ends each watch after this; resuming from the last version is free.
            timeoutSeconds: settings.timeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300),
          },
          (type: string, obj: WatchedObject & { code?: number; message?: string }) => {
            if (settled) return;
            if (type === 'ERROR') {
              finish(
                obj?.code === 410
                  ? new WatchExpiredError('watch expired (410 Gone)')
                  : new Error(`watch error ${obj?.code ?? ''}: ${obj?.message ?? 'unknown'}`),
              );
            } else if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED' || type === 'BOOKMARK') {
              onEvent(type as WatchEventType, obj);
            }
          },
          (err: unknown) => {
            const aborted = signal.aborted || (err instanceof Error && err.name === 'AbortError');
            const status = (err as { statusCode?: number } | null)?.statusCode;
            if (status === 410) finish(new WatchExpiredError('watch expired (410 Gone)'));
            else finish(err && !aborted ? err : undefined);
          },
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (error: unknown) => finish(error),
        );
    });
}

export function namespaceCollection(kc: KubeConfig): Collection {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    listPage: async (token, signal) =>
      typed(await core.listNamespace({ limit: PAGE, _continue: token }, signalOptions(signal))),
    watch: watchPathOf(kc, '/api/v1/namespaces'),
  };
}

export function serviceAccountCollection(kc: KubeConfig): Collection {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    listPage: async (token, signal) =>
      typed(
        await core.listServiceAccountForAllNamespaces(
          { limit: PAGE, _continue: token },
          signalOptions(signal),
        ),
      ),
    watch: watchPathOf(kc, '/api/v1/serviceaccounts'),
  };
}

export function imagePullSecretCollection(kc: KubeConfig): Collection {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    listPage: async (token, signal) => {
      const list = RawList.parse(
        await custom.listClusterCustomObject(
          { group: GROUP, version: VERSION, plural: PLURAL, limit: PAGE, _continue: token },
          signalOptions(signal),
        ),
      );
      return {
        items: list.items as WatchedObject[],
        resourceVersion: list.metadata.resourceVersion,
        continueToken: list.metadata.continue,
      };
    },
    watch: watchPathOf(kc, `/apis/${GROUP}/${VERSION}/${PLURAL}`),
  };
}

/** Secrets of the whole cluster that match `labelSelector` (the functions' watch of their own Secrets). */
export function secretCollection(kc: KubeConfig, labelSelector: string, timeoutSeconds?: number): Collection {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    listPage: async (token, signal) =>
      typed(
        await core.listSecretForAllNamespaces(
          { labelSelector, limit: PAGE, _continue: token },
          signalOptions(signal),
        ),
      ),
    watch: watchPathOf(kc, '/api/v1/secrets', {
      query: { labelSelector },
      ...(timeoutSeconds ? { timeoutSeconds: () => timeoutSeconds } : {}),
    }),
  };
}

/**
 * One ConfigMap, through list/watch restricted by `fieldSelector=metadata.name=<name>`: that is what lets
 * RBAC grant list/watch with `resourceNames: [<name>]` and nothing else (the hosts-updater).
 */
export function configMapCollection(
  kc: KubeConfig,
  namespace: string,
  name: string,
  timeoutSeconds?: number,
): Collection {
  const core = kc.makeApiClient(CoreV1Api);
  const fieldSelector = `metadata.name=${name}`;
  return {
    listPage: async (_token, signal) =>
      typed(await core.listNamespacedConfigMap({ namespace, fieldSelector }, signalOptions(signal))),
    watch: watchPathOf(kc, `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`, {
      query: { fieldSelector },
      ...(timeoutSeconds ? { timeoutSeconds: () => timeoutSeconds } : {}),
    }),
  };
}

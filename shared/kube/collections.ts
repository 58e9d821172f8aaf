import { GROUP, PLURAL, VERSION } from '../contracts/names.js';
import type { ListWatch, Query } from './list-watch.js';
import type { Collection } from './resource-watcher.js';

// Where each watched collection is listed and watched; each consumer adds what it looks at (keyOf,
// fingerprintOf) to make a ResourceSource. The transport is a ListWatch port (kube-client.ts), whichever
// credentials it carries (the light loader or client-node's KubeConfig): one watch mechanism for all.

const PAGE = 500;

export interface WatchSettings {
  /** Extra parameters, e.g. a labelSelector (the list applies the same). */
  query?: Record<string, string>;
  /** How long the server keeps the watch open; default 5-10 minutes, spread so watches do not end together. */
  timeoutSeconds?: () => number;
  /** Page size of the list (default 500); 0: one unpaged list. */
  limit?: number;
}

/** The list and watch of one collection path (bookmarks on, pages of `limit`). */
export function collectionAt(api: ListWatch, path: string, settings: WatchSettings = {}): Collection {
  const limit = settings.limit ?? PAGE;
  return {
    listPage: (token, signal) => {
      const query: Query = { ...settings.query };
      if (limit > 0) Object.assign(query, { limit, continue: token });
      return api.listPage(path, query, signal);
    },
    watch: (resourceVersion, onEvent, signal) =>
      api.watch(
        path,
        {
          ...settings.query,
          resourceVersion,
          allowWatchBookmarks: true,
          // The server ends each watch after this; resuming from the last version is free.
          timeoutSeconds: settings.timeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300),
        },
        onEvent,
        signal,
      ),
  };
}

export function namespaceCollection(api: ListWatch): Collection {
  return collectionAt(api, '/api/v1/namespaces');
}

export function serviceAccountCollection(api: ListWatch): Collection {
  return collectionAt(api, '/api/v1/serviceaccounts');
}

export function imagePullSecretCollection(api: ListWatch): Collection {
  return collectionAt(api, `/apis/${GROUP}/${VERSION}/${PLURAL}`);
}

/** Secrets of the whole cluster that match `labelSelector` (the functions' watch of their own Secrets). */
export function secretCollection(api: ListWatch, labelSelector: string, timeoutSeconds?: number): Collection {
  return collectionAt(api, '/api/v1/secrets', {
    query: { labelSelector },
    ...(timeoutSeconds ? { timeoutSeconds: () => timeoutSeconds } : {}),
  });
}

/**
 * One ConfigMap, through list/watch restricted by `fieldSelector=metadata.name=<name>`: that is what lets
 * RBAC grant list/watch with `resourceNames: [<name>]` and nothing else (the hosts-updater).
 */
export function configMapCollection(
  api: ListWatch,
  namespace: string,
  name: string,
  timeoutSeconds?: number,
): Collection {
  return collectionAt(api, `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`, {
    query: { fieldSelector: `metadata.name=${name}` },
    limit: 0,
    ...(timeoutSeconds ? { timeoutSeconds: () => timeoutSeconds } : {}),
  });
}

/**
 * One Lease, through list/watch restricted by `fieldSelector=metadata.name=<name>` (RBAC grants list/watch on
 * that one name): the relay standby's view of the leader's renewals.
 */
export function leaseCollection(api: ListWatch, namespace: string, name: string): Collection {
  return collectionAt(
    api,
    `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`,
    {
      query: { fieldSelector: `metadata.name=${name}` },
      limit: 0,
    },
  );
}

/**
 * One MutatingWebhookConfiguration, through list/watch restricted by `fieldSelector=metadata.name=<name>`
 * (RBAC grants list/watch on that one name): the webhook re-injects a caBundle someone reset as it happens.
 */
export function webhookConfigurationCollection(api: ListWatch, name: string): Collection {
  return collectionAt(api, '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
    query: { fieldSelector: `metadata.name=${name}` },
    limit: 0,
  });
}

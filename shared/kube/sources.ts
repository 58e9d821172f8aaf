import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { GROUP, PLURAL, VERSION } from '../contracts/names.js';
import type { ListPage, ResourceSource, WatchedObject } from './resource-watcher.js';

// Where each watched collection is listed and watched; each consumer adds what it looks at (keyOf,
// fingerprintOf) to make a ResourceSource.

export type Collection = Pick<ResourceSource, 'watchPath' | 'listPage'>;

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

export function namespaceCollection(kc: KubeConfig): Collection {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    watchPath: '/api/v1/namespaces',
    listPage: async (token) => typed(await core.listNamespace({ limit: PAGE, _continue: token })),
  };
}

export function serviceAccountCollection(kc: KubeConfig): Collection {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    watchPath: '/api/v1/serviceaccounts',
    listPage: async (token) =>
      typed(await core.listServiceAccountForAllNamespaces({ limit: PAGE, _continue: token })),
  };
}

export function imagePullSecretCollection(kc: KubeConfig): Collection {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    watchPath: `/apis/${GROUP}/${VERSION}/${PLURAL}`,
    listPage: async (token) => {
      const list = RawList.parse(
        await custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          limit: PAGE,
          _continue: token,
        }),
      );
      return {
        items: list.items as WatchedObject[],
        resourceVersion: list.metadata.resourceVersion,
        continueToken: list.metadata.continue,
      };
    },
  };
}

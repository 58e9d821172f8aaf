import type { ListPage, WatchEventType, WatchedObject } from './resource-watcher.js';

// The narrow port the one watch mechanism (collections.ts → ResourceWatcher) needs from a transport: one page
// of a collection's list, and its watch stream. kube-client.ts implements it over HTTPS; the connection it
// uses comes from the light kubeconfig loader (kube-target.ts) or from client-node's KubeConfig
// (client-node-connection.ts), so every component watches the same way whichever client it otherwise uses.

export type Query = Record<string, string | number | boolean | undefined>;

export interface ListWatch {
  /** One page of `path` (e.g. /api/v1/namespaces) with `query` (limit, continue, selectors). */
  listPage(path: string, query: Query, signal: AbortSignal): Promise<ListPage>;
  /**
   * Streams the watch of `path` (`query` carries resourceVersion, bookmarks, timeoutSeconds). Resolves when
   * the server ends it or `signal` aborts; rejects on failure, with WatchExpiredError on 410 Gone.
   */
  watch(
    path: string,
    query: Query,
    onEvent: (type: WatchEventType, obj: WatchedObject) => void,
    signal: AbortSignal,
  ): Promise<void>;
}

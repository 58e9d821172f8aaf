import type { ResourceSource } from '../../shared/kube/resource-watcher.js';

/**
 * Puts a gate in front of a source's watch (the list is left alone): `close()` ends the open watch and holds
 * new ones until `open()`, as a network partition would; the watcher then resumes from the resourceVersion
 * it had. Replaces the watcher's own suspend/resume, which no production code needed.
 */
export function gateWatch(source: ResourceSource): { close(): void; open(): void } {
  const inner = source.watch;
  let closed: { opened: Promise<void>; open: () => void } | undefined;
  const live = new Set<AbortController>();
  source.watch = async (resourceVersion, onEvent, signal) => {
    while (closed && !signal.aborted) {
      const gate = closed;
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => resolve(), { once: true });
        void gate.opened.then(resolve);
      });
    }
    if (signal.aborted) return;
    const own = new AbortController();
    live.add(own);
    const onAbort = () => own.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await inner(resourceVersion, onEvent, own.signal);
    } finally {
      signal.removeEventListener('abort', onAbort);
      live.delete(own);
    }
  };
  return {
    close() {
      let open = () => {};
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      closed = { opened, open };
      for (const c of live) c.abort();
    },
    open() {
      const gate = closed;
      closed = undefined;
      gate?.open();
    },
  };
}

import {
  type ConfigurationOptions,
  Observable,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

/**
 * Options for a client-node 1.x call that carry `signal` into the HTTP request (its RequestContext's
 * signal, which the fetch behind it honours): an aborted job's requests are cancelled, not only abandoned.
 * Composes with setHeaderOptions: `setHeaderOptions('Content-Type', ..., signalOptions(signal))`.
 */
export function signalOptions(
  signal: AbortSignal | undefined,
  opt?: ConfigurationOptions<ObservableMiddleware>,
): ConfigurationOptions<ObservableMiddleware> | undefined {
  if (!signal) return opt;
  const middleware: ObservableMiddleware = {
    pre: (request: RequestContext) => {
      request.setSignal(signal);
      return new Observable(Promise.resolve(request));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return {
    ...opt,
    middleware: [...(opt?.middleware ?? []), middleware],
    middlewareMergeStrategy: 'append',
  };
}

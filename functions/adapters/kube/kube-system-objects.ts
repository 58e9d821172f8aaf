import { CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import { z } from 'zod';
import { FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../../shared/contracts/labels.js';
import { bindSignal, type SignalBound } from '../../../shared/deadline.js';
import { RetryableError, TerminalError } from '../../../shared/errors.js';
import { signalOptions } from '../../../shared/kube/abort.js';
import { shareConnections } from '../../../shared/kube/kubeconfig.js';
import type { ConfigMapView, StoredToken } from '../../core/model.js';
import type { SecretReader, SystemConfigMaps, TokenStorePort } from '../../core/ports.js';
import {
  fromTokenSecret,
  TOKEN_KEY_LABEL,
  tokenSecretName,
  toTokenSecret,
} from '../../core/registry-tokens/token-store.js';
import { callApi, type RequestObserver } from './api-call.js';

// The functions' access to their own namespace (tcr-assistant-system): the updater-config ConfigMap and the
// Secrets that hold Tencent Cloud API keys, and our token Secrets (tcr-token.<registry>.<type>).
// infra/rbac/functions-system.yaml grants exactly these calls.

const SecretData = z.record(z.string(), z.string());

export class KubeSystemObjects implements SecretReader, SystemConfigMaps, TokenStorePort, SignalBound {
  private readonly core: CoreV1Api;
  /** The job's deadline (set on a per-job view by withSignal): every request carries it. */
  signal: AbortSignal | undefined;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    readonly observe: RequestObserver = () => {},
  ) {
    this.core = shareConnections(kc).makeApiClient(CoreV1Api);
  }

  withSignal(signal: AbortSignal | undefined): this {
    return bindSignal(this, signal);
  }

  private opts() {
    return signalOptions(this.signal);
  }

  async readSecretData(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    const secret = await this.call('get', 'secrets', () =>
      this.core.readNamespacedSecret({ namespace, name }, this.opts()),
    );
    if (secret === undefined) return undefined;
    return decodeData(SecretData.parse(secret.data ?? {}));
  }

  async readToken(key: string): Promise<StoredToken | undefined> {
    const secret = await this.call('get', 'secrets', () =>
      this.core.readNamespacedSecret({ namespace: this.namespace, name: tokenSecretName(key) }, this.opts()),
    );
    return secret && toStoredToken(secret);
  }

  async listTokens(): Promise<StoredToken[]> {
    const list = await this.call('list', 'secrets', () =>
      this.core.listNamespacedSecret(
        {
          namespace: this.namespace,
          labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${TOKEN_KEY_LABEL}`,
        },
        this.opts(),
      ),
    );
    return (list?.items ?? []).flatMap((s) => toStoredToken(s) ?? []);
  }

  async writeToken(token: StoredToken): Promise<void> {
    const shape = toTokenSecret(token);
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name: shape.name, labels: shape.labels, annotations: shape.annotations },
      data: Object.fromEntries(
        Object.entries(shape.stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
      ),
    };
    if (token.resourceVersion === undefined) {
      try {
        await this.call('create', 'secrets', () =>
          this.core.createNamespacedSecret(
            { namespace: this.namespace, body, fieldManager: FIELD_MANAGER },
            this.opts(),
          ),
        );
        return;
      } catch (error) {
        if (!(error instanceof RetryableError && error.status === 409)) throw error;
        // A Secret of that name exists: replace it only if it is ours, guarded by what we read now.
        const existing = await this.call('get', 'secrets', () =>
          this.core.readNamespacedSecret({ namespace: this.namespace, name: shape.name }, this.opts()),
        );
        if (existing?.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
          throw new TerminalError(
            `Secret ${this.namespace}/${shape.name} exists and is not ours (no ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}): the token cannot be stored`,
          );
        }
        body.metadata = { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion };
      }
    } else {
      body.metadata = { ...body.metadata, resourceVersion: token.resourceVersion };
    }
    await this.call('update', 'secrets', () =>
      this.core.replaceNamespacedSecret(
        {
          namespace: this.namespace,
          name: shape.name,
          body,
          fieldManager: FIELD_MANAGER,
        },
        this.opts(),
      ),
    );
  }

  async deleteToken(key: string, resourceVersion: string): Promise<'deleted' | 'gone'> {
    try {
      await this.call('delete', 'secrets', () =>
        this.core.deleteNamespacedSecret(
          {
            namespace: this.namespace,
            name: tokenSecretName(key),
            body: { preconditions: { resourceVersion } },
          },
          this.opts(),
        ),
      );
      return 'deleted';
    } catch (error) {
      if ((error as { status?: number }).status === 404) return 'gone';
      throw error;
    }
  }

  async getConfigMap(name: string): Promise<ConfigMapView | undefined> {
    const cm = await this.call('get', 'configmaps', () =>
      this.core.readNamespacedConfigMap({ namespace: this.namespace, name }, this.opts()),
    );
    return cm && toConfigMapView(cm);
  }

  async createConfigMap(configMap: Omit<ConfigMapView, 'resourceVersion'>): Promise<'created' | 'exists'> {
    try {
      await this.call('create', 'configmaps', () =>
        this.core.createNamespacedConfigMap(
          {
            namespace: this.namespace,
            body: toBody(configMap),
            fieldManager: FIELD_MANAGER,
          },
          this.opts(),
        ),
      );
      return 'created';
    } catch (error) {
      if (error instanceof RetryableError && error.status === 409) return 'exists';
      throw error;
    }
  }

  async replaceConfigMap(configMap: ConfigMapView): Promise<void> {
    const body = toBody(configMap);
    body.metadata = { ...body.metadata, resourceVersion: configMap.resourceVersion };
    await this.call('update', 'configmaps', () =>
      this.core.replaceNamespacedConfigMap(
        {
          namespace: this.namespace,
          name: configMap.name,
          body,
          fieldManager: FIELD_MANAGER,
        },
        this.opts(),
      ),
    );
  }

  /** One API call of this view (api-call.ts); a `get` of something absent is undefined. */
  private call<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T | undefined> {
    return callApi(this, verb, resource, fn, verb === 'get' ? { notFound: undefined } : undefined);
  }
}

/** A Secret's data, base64-decoded. */
function decodeData(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

function toStoredToken(secret: V1Secret): StoredToken | undefined {
  return fromTokenSecret({
    labels: secret.metadata?.labels ?? {},
    annotations: secret.metadata?.annotations ?? {},
    data: decodeData(secret.data ?? {}),
    resourceVersion: secret.metadata?.resourceVersion ?? '',
  });
}

function toConfigMapView(cm: V1ConfigMap): ConfigMapView {
  return {
    name: cm.metadata?.name ?? '',
    resourceVersion: cm.metadata?.resourceVersion ?? '',
    labels: cm.metadata?.labels ?? {},
    annotations: cm.metadata?.annotations ?? {},
    data: cm.data ?? {},
  };
}

function toBody(configMap: Omit<ConfigMapView, 'resourceVersion'>): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: configMap.name, labels: configMap.labels, annotations: configMap.annotations },
    data: configMap.data,
  };
}

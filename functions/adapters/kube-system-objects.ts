import { ApiException, CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { z } from 'zod';
import { RetryableError } from '../../shared/errors.js';
import { FIELD_MANAGER } from '../../shared/labels.js';
import type { ConfigMapView, SystemConfigMaps } from '../core/refresh-private-endpoints.js';
import type { SecretReader } from '../core/tcr-api.js';
import { classify, type RequestObserver } from './kube-cluster.js';

// The functions' access to their own namespace (tcr-assistant-system): the updater-config ConfigMap and the
// Secrets that hold Tencent Cloud API keys. infra/rbac/functions-system.yaml grants exactly these calls.

const SecretData = z.record(z.string(), z.string());

export class KubeSystemObjects implements SecretReader, SystemConfigMaps {
  private readonly core: CoreV1Api;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly observe: RequestObserver = () => {},
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async readSecretData(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    const secret = await this.call('get', 'secrets', () =>
      this.core.readNamespacedSecret({ namespace, name }),
    );
    if (secret === undefined) return undefined;
    const data = SecretData.parse(secret.data ?? {});
    return Object.fromEntries(
      Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }

  async getConfigMap(name: string): Promise<ConfigMapView | undefined> {
    const cm = await this.call('get', 'configmaps', () =>
      this.core.readNamespacedConfigMap({ namespace: this.namespace, name }),
    );
    return cm && toConfigMapView(cm);
  }

  async createConfigMap(configMap: Omit<ConfigMapView, 'resourceVersion'>): Promise<'created' | 'exists'> {
    try {
      await this.call('create', 'configmaps', () =>
        this.core.createNamespacedConfigMap({
          namespace: this.namespace,
          body: toBody(configMap),
          fieldManager: FIELD_MANAGER,
        }),
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
      this.core.replaceNamespacedConfigMap({
        namespace: this.namespace,
        name: configMap.name,
        body,
        fieldManager: FIELD_MANAGER,
      }),
    );
  }

  /** One API call, recorded for metrics; 404 → undefined, other failures typed as KubeCluster does. */
  private async call<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await fn();
      this.observe(verb, resource, 200);
      return result;
    } catch (error) {
      const code = error instanceof ApiException ? error.code : 0;
      this.observe(verb, resource, code);
      if (code === 404 && verb === 'get') return undefined;
      throw classify(error, `${verb} ${resource}`);
    }
  }
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

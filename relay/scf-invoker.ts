import { scf } from 'tencentcloud-sdk-nodejs/tencentcloud/services/scf/index.js';
import { z } from 'zod';
import { type TencentEndpoint, tencentHttpProfile } from '../shared/tencent-http.js';
import { InvokeError, type Invoker, type WakeEvent } from './scf-waker.js';

export interface ScfInvokerOptions extends TencentEndpoint {
  functionName: string;
  namespace: string;
  qualifier: string;
  region: string;
  /** The relay's own key (CAM: scf:Invoke on this function only). Never logged, never in an error. */
  credential: { secretId: string; secretKey: string };
}

/** The SDK's TencentCloudSDKHttpException, by shape. */
const SdkError = z.object({
  message: z.string(),
  code: z.string().optional(),
  httpCode: z.number().optional(),
});

/** SCF's Invoke API through tencentcloud-sdk-nodejs, asynchronous (InvocationType Event). */
export class ScfInvoker implements Invoker {
  private readonly client: InstanceType<typeof scf.v20180416.Client>;

  constructor(private readonly opts: ScfInvokerOptions) {
    this.client = new scf.v20180416.Client({
      credential: { secretId: opts.credential.secretId, secretKey: opts.credential.secretKey },
      region: opts.region,
      profile: { httpProfile: tencentHttpProfile(opts) },
    });
  }

  async invoke(event: WakeEvent): Promise<void> {
    try {
      await this.client.request(
        'Invoke',
        {
          FunctionName: this.opts.functionName,
          Namespace: this.opts.namespace,
          Qualifier: this.opts.qualifier,
          InvocationType: 'Event',
          ClientContext: JSON.stringify(event),
        },
        { signal: AbortSignal.timeout(this.opts.timeoutSeconds * 1000 + 500) },
      );
    } catch (error) {
      const parsed = SdkError.safeParse(error);
      const code =
        parsed.data?.code || (parsed.data?.httpCode ? `HTTP${parsed.data.httpCode}` : 'NetworkError');
      const raw = parsed.success ? parsed.data.message : String(error);
      // The SDK's messages carry no key; scrubbed anyway, as every Tencent error path here is.
      const message = raw.split(this.opts.credential.secretKey).join('[redacted]');
      throw new InvokeError(code, `Invoke ${this.opts.namespace}/${this.opts.functionName}: ${message}`);
    }
  }
}

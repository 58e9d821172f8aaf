import { describe, expect, it } from 'vitest';
import {
  apiserverWebhookHistogram,
  diffHistogram,
  failOpenCount,
  quantile,
  shareAtMost,
} from '../../../bench/admission.js';

const series = (
  counts: number[],
  sum: number,
  labels = 'name="serviceaccounts.tcr.tencentcloudcr.com",operation="CREATE",rejected="false",type="admit"',
) => {
  const bounds = ['0.005', '0.025', '0.1', '0.5', '1', '2.5', '10', '25', '+Inf'];
  return [
    ...bounds.map(
      (le, i) =>
        `apiserver_admission_webhook_admission_duration_seconds_bucket{${labels},le="${le}"} ${counts[i] ?? counts.at(-1)}`,
    ),
    `apiserver_admission_webhook_admission_duration_seconds_sum{${labels}} ${sum}`,
    `apiserver_admission_webhook_admission_duration_seconds_count{${labels}} ${counts.at(-1)}`,
  ].join('\n');
};

describe('admission latency from the API server histogram', () => {
  it('diffs two readings and reads p99 inside its bucket, as histogram_quantile does', () => {
    const before = apiserverWebhookHistogram(series([10, 10, 10], 0.02));
    const after = apiserverWebhookHistogram(
      [
        series([1000, 1010, 1010], 2.5),
        // Another webhook's series is not ours.
        series([0, 0, 500], 300, 'name="other.example.com",operation="CREATE",rejected="false",type="admit"'),
      ].join('\n'),
    );
    const burst = diffHistogram(after, before);
    expect(burst.count).toBe(1000);
    expect(shareAtMost(burst, 0.005)).toBeCloseTo(0.99);
    // 990 of 1000 at most 5 ms: the 99th percentile is the top of that bucket.
    expect(quantile(burst, 0.99)).toBeCloseTo(0.005);
    expect(quantile(burst, 0.5)).toBeCloseTo(0.005 * (500 / 990));
    // Past the first bucket the estimate moves into the next one.
    expect(quantile(burst, 0.995)).toBeGreaterThan(0.005);
    expect(quantile(burst, 0.995)).toBeLessThanOrEqual(0.025);
  });

  it('counts fail-open calls of our webhook only', () => {
    const text = [
      'apiserver_admission_webhook_fail_open_count{name="serviceaccounts.tcr.tencentcloudcr.com",type="admit"} 3',
      'apiserver_admission_webhook_fail_open_count{name="other.example.com",type="admit"} 7',
    ].join('\n');
    expect(failOpenCount(text)).toBe(3);
  });
});

import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BUILD_SCRIPT = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'scripts',
  'build-control-plane.sh',
);

/**
 * The folder with kube-apiserver, kube-controller-manager and etcd: KUBEBUILDER_ASSETS if it has them,
 * else the per-machine cache, building into it first if needed (progress goes to stderr).
 */
export async function ensureControlPlaneBinaries(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('bash', [BUILD_SCRIPT], { maxBuffer: 1 << 20 }, (error, stdout) => {
      if (error) {
        reject(new Error(`building the control plane binaries failed: ${error.message}`));
        return;
      }
      const dir = stdout.trim().split('\n').pop();
      if (!dir) reject(new Error('the control plane build script printed no folder'));
      else resolve(dir);
    });
    child.stderr?.pipe(process.stderr);
  });
}

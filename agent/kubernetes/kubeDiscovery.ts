// Is there a Kubernetes API to talk to, and where are its credentials? Only file and variable
// checks here, no client: a node without a cluster never loads the Kubernetes code (about
// 9 MiB of RSS; bench/RESULTS.md). Order (DESIGN.md): an explicit kubeconfig (--kubeconfig or
// `kubeconfig` in the config), else in-cluster (the pod's ServiceAccount), else $KUBECONFIG.
import { constants } from 'node:fs';
import { fileErrorReason } from '../errors.ts';
import * as fs from '../host/asyncFs.ts';
import path from 'node:path';

/** Where Kubernetes mounts the ServiceAccount of a pod. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type KubeSource =
  | { kind: 'kubeconfig'; file: string }
  | { kind: 'in-cluster'; host: string; port: string; dir: string };

export type KubeDiscovery =
  { kind: 'none'; reason: string } | { kind: 'found'; source: KubeSource };

export interface KubeDiscoveryInputs {
  /** An explicit kubeconfig: used whatever else there is (a failure to use it is an error). */
  kubeconfig?: string | undefined;
  env: NodeJS.ProcessEnv;
  serviceAccountDir?: string;
}

export async function discoverKube(inputs: KubeDiscoveryInputs): Promise<KubeDiscovery> {
  if (inputs.kubeconfig !== undefined)
    return { kind: 'found', source: { kind: 'kubeconfig', file: inputs.kubeconfig } };
  const host = inputs.env.KUBERNETES_SERVICE_HOST;
  const port = inputs.env.KUBERNETES_SERVICE_PORT;
  const dir = inputs.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (
    host !== undefined &&
    host !== '' &&
    port !== undefined &&
    port !== '' &&
    (await exists(path.join(dir, 'token')))
  ) {
    return { kind: 'found', source: { kind: 'in-cluster', host, port, dir } };
  }
  const fromEnv = inputs.env.KUBECONFIG;
  if (fromEnv !== undefined && fromEnv !== '') {
    // kubectl merges a ":"-separated list; the agent uses the first file it can read.
    const unreadable: string[] = [];
    for (const file of fromEnv.split(':').filter((f) => f !== '')) {
      const why = await unreadableBecause(file);
      if (why === undefined) return { kind: 'found', source: { kind: 'kubeconfig', file } };
      unreadable.push(`${file}: ${why}`);
    }
    return {
      kind: 'none',
      reason: `no file KUBECONFIG names can be read (${unreadable.join('; ') || 'it names none'})`,
    };
  }
  return {
    kind: 'none',
    reason: 'not in a cluster (no ServiceAccount token), no --kubeconfig and no KUBECONFIG',
  };
}

/** Why a file cannot be read ("no such file", "permission denied"), or undefined if it can. */
async function unreadableBecause(file: string): Promise<string | undefined> {
  try {
    await fs.access(file, constants.R_OK);
    return undefined;
  } catch (error) {
    return fileErrorReason(error);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

// Shared set-up for tests against the fake API server: a running fake, a kubeconfig for the
// agent's ServiceAccount, and an API client built exactly as the agent builds it.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { openKubeAccess } from '../../agent/kubernetes/kubeAccess.ts';
import { KubeApi } from '../../agent/kubernetes/kubeApi.ts';
import type { Verb } from '../../agent/kubernetes/kubeApi.ts';
import { startFakeKubeApi } from '../kube/fakeKubeApi.ts';
import type { FakeKubeApi, FakeKubeApiOptions } from '../kube/fakeKubeApi.ts';
import { cleanup, tempDir } from '../helpers.ts';

export const silent = pino({ level: 'silent' });

export interface Harness {
  fake: FakeKubeApi;
  dir: string;
  kubeconfig: string;
  api: KubeApi;
  /** Failed calls the client counted, by verb (what node_auditor_kube_api_errors_total gets). */
  errors: Verb[];
}

export async function harness(t: TestContext, options: FakeKubeApiOptions = {}): Promise<Harness> {
  const fake = await startFakeKubeApi(options);
  cleanup(t, () => fake.close());
  const dir = await tempDir(t);
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fake.writeKubeconfig(kubeconfig, 'sa');
  const errors: Verb[] = [];
  const api = new KubeApi(await openKubeAccess({ kind: 'kubeconfig', file: kubeconfig }), {
    timeoutMs: 3000,
    onError: (verb) => errors.push(verb),
  });
  cleanup(t, () => {
    api.close();
  });
  return { fake, dir, kubeconfig, api, errors };
}

/** A second client, as another agent would have, whose connections go through a proxy. */
export async function clientVia(h: Harness, port: number, name: string): Promise<KubeApi> {
  const file = path.join(h.dir, `kubeconfig-${name}`);
  await fs.writeFile(
    file,
    (await fs.readFile(h.kubeconfig, 'utf8')).replace(
      `127.0.0.1:${h.fake.port}`,
      `127.0.0.1:${port}`,
    ),
  );
  return new KubeApi(await openKubeAccess({ kind: 'kubeconfig', file }), { timeoutMs: 1000 });
}

/** Requests of the agent's identity that the API server refused as forbidden. */
export function forbidden(fake: FakeKubeApi): string[] {
  return fake.requests
    .filter((r) => r.identity === 'sa' && r.status === 403)
    .map((r) => `${r.method} ${r.path}`);
}

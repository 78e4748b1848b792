// A self-signed certificate made by the real openssl, for the tests' HTTPS servers (the API
// server, the kubelet): key and certificate PEM, the certificate being its own CA.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface SelfSignedOptions {
  /** Default `/CN=127.0.0.1`. */
  subject?: string;
  /** Default `IP:127.0.0.1,DNS:localhost`. */
  subjectAltName?: string;
}

export async function selfSignedCertificate(
  options: SelfSignedOptions = {},
): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'node-auditor-tls-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    await execFileAsync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      options.subject ?? '/CN=127.0.0.1',
      '-addext',
      `subjectAltName=${options.subjectAltName ?? 'IP:127.0.0.1,DNS:localhost'}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]);
    return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

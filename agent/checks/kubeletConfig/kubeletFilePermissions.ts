// Modes and owners of the kubelet's files against the CIS Kubernetes Benchmark (worker node
// section 4.1, ids as in kube-bench's cfg/cis-1.8/node.yaml, unchanged up to cis-1.12). A file
// should be owned by root:root and be no more open than its rule's mode ("bitmask": no
// permission bit outside it). HostRoot reads files but has no stat, so the file is stat'ed at
// host.localPath() (links resolved inside the host root) with node:fs.
import * as fs from '../../host/asyncFs.ts';
import type { Stats } from 'node:fs';
import { errnoCode, fileErrorReason } from '../../errors.ts';
import type { HostRoot } from '../../host/hostRoot.ts';

/** Enough for years of rotated kubelet-client-<date>.pem files; the rest are not audited. */
const MAX_PKI_FILES = 200;

export interface FileRule {
  /** What the file is, in a finding's words: "config file", "kubeconfig". */
  role: string;
  /** The most open mode allowed. */
  maxMode: number;
  /** The benchmark rules, for the finding's evidence. */
  modeRule: string;
  ownerRule: string;
  /** Why a loose mode matters for this file. */
  why: string;
}

const CONFIG_WHY =
  'it sets how the kubelet authenticates and authorizes callers: whoever can write it can open the node to anyone';

export const FILE_RULES = {
  config: {
    role: 'config file',
    maxMode: 0o600,
    modeRule: 'CIS Kubernetes 1.8 4.1.9 (kubelet config.yaml permissions 600 or more restrictive)',
    ownerRule: 'CIS Kubernetes 1.8 4.1.10 (kubelet config.yaml ownership root:root)',
    why: CONFIG_WHY,
  },
  // CIS 1.8 has no rule of its own for drop-ins; a drop-in can override any field of the config
  // file, so the config file's rules apply.
  dropin: {
    role: 'config drop-in',
    maxMode: 0o600,
    modeRule:
      'CIS Kubernetes 1.8 4.1.9, applied to --config-dir drop-ins (they override config.yaml)',
    ownerRule: 'CIS Kubernetes 1.8 4.1.10, applied to --config-dir drop-ins',
    why: CONFIG_WHY,
  },
  kubeconfig: {
    role: 'kubeconfig',
    maxMode: 0o600,
    modeRule:
      'CIS Kubernetes 1.8 4.1.5 (--kubeconfig kubelet.conf permissions 600 or more restrictive)',
    ownerRule: 'CIS Kubernetes 1.8 4.1.6 (--kubeconfig kubelet.conf ownership root:root)',
    why: "it holds or names the node's API credentials: whoever reads it can act as this node",
  },
  // CIS 1.8 asked 600 for the client CA file; CIS 1.12 relaxed 4.1.7 to 644: a CA certificate is
  // public, what matters is that only root can change it.
  clientCA: {
    role: 'client CA file',
    maxMode: 0o644,
    modeRule:
      'CIS Kubernetes 1.12 4.1.7 (client certificate authorities file permissions 644 or more restrictive; CIS 1.8 asked 600)',
    ownerRule: 'CIS Kubernetes 1.8 4.1.8 (client certificate authorities file ownership root:root)',
    why: 'whoever can change it can add a CA whose client certificates the kubelet then trusts',
  },
  // The worker section has no PKI rule; the control plane's (1.1.19-1.1.21) are the closest.
  pkiKey: {
    role: 'private key',
    maxMode: 0o600,
    modeRule:
      'CIS Kubernetes 1.8 1.1.21 (PKI key files 600), applied to the kubelet --cert-dir (section 4 has no PKI rule)',
    ownerRule:
      'CIS Kubernetes 1.8 1.1.19 (PKI file ownership root:root), applied to the kubelet --cert-dir',
    why: "it holds the kubelet's private key (the client .pem files hold key and certificate): whoever reads it can act as this node",
  },
  pkiCert: {
    role: 'certificate',
    maxMode: 0o644,
    modeRule:
      'CIS Kubernetes 1.6 1.1.20 (PKI certificate files 644), applied to the kubelet --cert-dir (the kubelet writes its certificates 644)',
    ownerRule:
      'CIS Kubernetes 1.8 1.1.19 (PKI file ownership root:root), applied to the kubelet --cert-dir',
    why: 'whoever can change it can replace the certificate the kubelet serves',
  },
} as const satisfies Record<string, FileRule>;

export interface AuditedFile {
  /** Host path. */
  path: string;
  rule: FileRule;
  mode: number;
  uid: number;
  gid: number;
}

/** A host file's stat after links, or undefined when it is missing or cannot be stat'ed. */
export async function statHostFile(
  host: HostRoot,
  hostPath: string,
): Promise<{ stats: Stats } | { error: string } | undefined> {
  try {
    const stats = await fs.stat(await host.localPath(hostPath));
    return { stats };
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    return { error: fileErrorReason(error) };
  }
}

/** The files under the kubelet's --cert-dir with their rule: keys and .pem 600, .crt 644. */
export async function pkiFiles(
  host: HostRoot,
  certDir: string,
): Promise<{ path: string; rule: FileRule }[]> {
  let entries;
  try {
    entries = await host.listDir(certDir);
  } catch {
    return [];
  }
  if (entries === null) return [];
  return entries
    .filter((entry) => entry.isFile)
    .slice(0, MAX_PKI_FILES)
    .map((entry) => ({
      path: `${certDir.replace(/\/+$/, '')}/${entry.name}`,
      // Only a .crt is surely a certificate alone; kubelet-client-*.pem hold the key too.
      rule: entry.name.endsWith('.crt') ? FILE_RULES.pkiCert : FILE_RULES.pkiKey,
    }));
}

/** Permission bits outside what the rule allows (0 when the mode is fine). */
export function excessBits(mode: number, rule: FileRule): number {
  return mode & 0o777 & ~rule.maxMode;
}

export function octal(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

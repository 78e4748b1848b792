// Every check the agent has, in one table. Adding a check means adding it here; nothing
// registers itself on import. Order is the order reports list them in.
import type { Check } from './check.ts';
import { inotifyCheck } from './inotify/inotifyCheck.ts';
import { pauseCheck } from './pause/pauseCheck.ts';
import { zombiesCheck } from './zombies/zombiesCheck.ts';
import { containerRuntimeCheck } from './containerRuntime/containerRuntimeCheck.ts';
import { kubeletCertCheck } from './kubeletCert/kubeletCertCheck.ts';
import { logsCheck } from './logs/logsCheck.ts';
import { sysctlCheck } from './sysctl/sysctlCheck.ts';
import { apiserverAnonymousCheck } from './apiserverAnonymous/apiserverAnonymousCheck.ts';
import { rbacCheck } from './rbac/rbacCheck.ts';
import { kubeletAnonymousCheck } from './kubeletAnonymous/kubeletAnonymousCheck.ts';
import { cveCheck } from './cve/cveCheck.ts';
import { kubeletConfigCheck } from './kubeletConfig/kubeletConfigCheck.ts';
import { runtimeConfigCheck } from './runtimeConfig/runtimeConfigCheck.ts';

export const CHECKS: readonly Check[] = [
  sysctlCheck,
  logsCheck,
  kubeletCertCheck,
  containerRuntimeCheck,
  inotifyCheck,
  pauseCheck,
  zombiesCheck,
  kubeletAnonymousCheck,
  kubeletConfigCheck,
  apiserverAnonymousCheck,
  cveCheck,
  rbacCheck,
  runtimeConfigCheck,
];

export function checkIds(checks: readonly Check[] = CHECKS): string[] {
  return checks.map((check) => check.id);
}

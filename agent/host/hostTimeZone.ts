// Syslog's traditional timestamps carry no zone: they are the host's local time. In a container
// the agent's own zone is UTC, so it adopts the host's (from /etc/timezone or the /etc/localtime
// link) unless TZ is set explicitly.
import * as fs from './asyncFs.ts';
import type { HostRoot } from './hostRoot.ts';

/** The host's IANA zone name, or undefined when it cannot be told. */
export async function hostTimeZone(host: HostRoot): Promise<string | undefined> {
  try {
    const text = await host.readText('/etc/timezone', { maxBytes: 256 });
    const name = text?.trim().split('\n')[0]?.trim();
    if (name !== undefined && /^[A-Za-z0-9_+\-/]+$/.test(name)) return name;
  } catch {
    /* try the link */
  }
  try {
    const target = await fs.readlink(host.local('/etc/localtime'));
    const name = /zoneinfo\/(.+)$/.exec(target)?.[1];
    if (name !== undefined && /^[A-Za-z0-9_+\-/]+$/.test(name)) return name;
  } catch {
    /* not a link: unknown */
  }
  return undefined;
}

/** Use the host's zone for local times, when reading another root and TZ is not set. */
export async function adoptHostTimeZone(host: HostRoot): Promise<string | undefined> {
  if (host.root === '/' || (process.env.TZ ?? '') !== '') return undefined;
  const zone = await hostTimeZone(host);
  if (zone !== undefined) process.env.TZ = zone;
  return zone;
}

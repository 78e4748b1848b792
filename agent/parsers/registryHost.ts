// Registry hosts as runtimes name them: "host", "host:port", "[v6]:port", or a URL. Docker and
// containerd both treat a registry on the node itself (localhost, 127.0.0.0/8, ::1) as
// insecure by default, so those are never worth reporting. Pure.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** The host part of "host", "host:port" or "[v6]:port" (brackets removed, lower-cased). */
function hostOnly(hostPort: string): string {
  const value = hostPort.trim().toLowerCase();
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    return close < 0 ? value : value.slice(1, close);
  }
  // Two or more colons and no brackets: a bare IPv6 address, not host:port.
  const colons = value.split(':').length - 1;
  if (colons === 1) return value.slice(0, value.indexOf(':'));
  return value;
}

/** localhost, an address in 127.0.0.0/8, or ::1 (given a host, host:port or [v6]:port). */
export function isLoopbackHost(hostPort: string): boolean {
  const host = hostOnly(hostPort);
  if (host === 'localhost') return true;
  if (isIPv4(host)) return LOOPBACK.check(host, 'ipv4');
  if (isIPv6(host)) return LOOPBACK.check(host, 'ipv6');
  return false;
}

export interface RegistryUrl {
  scheme: string;
  /** host or host:port, as in the URL. */
  host: string;
}

/**
 * The scheme and host of a registry URL as containerd reads hosts.toml and mirror endpoints:
 * a value that does not start with "http" is taken as "https://" + value. Undefined when it
 * has no host. User information (user:password@) is dropped: it must never reach a report.
 */
export function registryUrl(value: string): RegistryUrl | undefined {
  const withScheme = value.startsWith('http') ? value : `https://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return undefined;
  }
  if (url.host === '') return undefined;
  return { scheme: url.protocol.replace(/:$/, ''), host: url.host };
}

/** A URL for a report: scheme, host and path, without user information, query or fragment. */
export function displayUrl(value: string): string {
  try {
    const url = new URL(value);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    // Not a URL we can parse: show it only if it cannot hide credentials.
    return value.includes('@') ? '(unparsable URL)' : value;
  }
}

/** A runtime setting that makes image pulls from one registry trust the network. */
export interface InsecureRegistrySetting {
  /** The registry host[:port] the setting is about (or a description, for a wildcard). */
  host: string;
  /** skip-verify: TLS without checking the certificate; plain-http: no TLS; insecure: either. */
  kind: 'skip-verify' | 'plain-http' | 'insecure';
  /** 1-based line of the setting in its file. */
  line: number;
  /** The setting as it reads in the file, rebuilt from parsed values (no credentials). */
  setting: string;
  loopback: boolean;
  /** What else to know about this setting (when it applies). */
  note?: string;
}

/** A TOML key as written in a header or a dotted key: bare when it can be, quoted otherwise. */
export function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

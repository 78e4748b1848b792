// sysctl.d(5) / sysctl.conf(5) file syntax, as both systemd-sysctl and procps `sysctl --system`
// read it. Pure: text in, assignments out.

export interface SysctlAssignment {
  /** Canonical dotted key (see normalizeSysctlKey); may be a systemd glob such as net.ipv4.conf.*.rp_filter. */
  key: string;
  value: string;
  /** 1-based line number. */
  line: number;
}

/** systemd-sysctl (v245+): "-key" with no "=" keeps a glob assignment away from that key. */
export interface SysctlExclusion {
  key: string;
  line: number;
}

export interface SysctlConfLineError {
  line: number;
  text: string;
  reason: string;
}

export interface SysctlConf {
  assignments: SysctlAssignment[];
  exclusions: SysctlExclusion[];
  invalid: SysctlConfLineError[];
  /** NUL bytes: not a text file at all; nothing in it is applied. */
  binary: boolean;
}

export function parseSysctlConf(text: string): SysctlConf {
  if (text.includes('\0')) return { assignments: [], exclusions: [], invalid: [], binary: true };
  const assignments: SysctlAssignment[] = [];
  const exclusions: SysctlExclusion[] = [];
  const invalid: SysctlConfLineError[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let body = (lines[i] ?? '').trim();
    if (body === '' || body.startsWith('#') || body.startsWith(';')) continue;
    // A leading "-" means "ignore a failure to apply this" on an assignment, and "exclude
    // this key from globs" on a bare key.
    const dash = body.startsWith('-');
    if (dash) body = body.slice(1).trimStart();
    const eq = body.indexOf('=');
    if (eq < 0) {
      if (dash && body !== '' && !/\s/.test(body))
        exclusions.push({ key: normalizeSysctlKey(body), line: i + 1 });
      else invalid.push({ line: i + 1, text: truncate(body), reason: "missing '='" });
      continue;
    }
    const rawKey = body.slice(0, eq).trim();
    const value = body.slice(eq + 1).trim();
    if (rawKey === '') {
      invalid.push({ line: i + 1, text: truncate(body), reason: 'empty key' });
    } else if (/\s/.test(rawKey)) {
      invalid.push({ line: i + 1, text: truncate(body), reason: 'key contains whitespace' });
    } else {
      assignments.push({ key: normalizeSysctlKey(rawKey), value, line: i + 1 });
    }
  }
  return { assignments, exclusions, invalid, binary: false };
}

/**
 * Canonical dotted form of a sysctl key. Both "." and "/" separate components; when the first
 * separator is "/", the two are swapped (so a VLAN interface "eth0.100" can be written
 * net/ipv4/conf/eth0.100/rp_filter). In the dotted form a literal dot inside a component is "/".
 */
export function normalizeSysctlKey(key: string): string {
  const firstSlash = key.indexOf('/');
  const firstDot = key.indexOf('.');
  if (firstSlash >= 0 && (firstDot < 0 || firstSlash < firstDot)) {
    return key.replace(/[./]/g, (c) => (c === '/' ? '.' : '/'));
  }
  return key;
}

/**
 * The components of a key as names under /proc/sys, or undefined when the key is not a sysctl
 * name: an empty, "." or ".." component would walk out of /proc/sys (a profile key such as
 * kernel/../../../etc/shadow must never become a path).
 */
export function sysctlKeyComponents(key: string): string[] | undefined {
  const dotted = normalizeSysctlKey(key);
  const parts = dotted.split('.').map((part) => part.replace(/\//g, '.'));
  const ok = parts.every(
    (part) => part !== '' && part !== '.' && part !== '..' && /^[A-Za-z0-9_.:@+-]+$/.test(part),
  );
  return ok ? parts : undefined;
}

/** The /proc/sys path of a key. Throws for a key that is not a sysctl name (see above). */
export function sysctlProcPath(key: string): string {
  const parts = sysctlKeyComponents(key);
  if (parts === undefined) throw new TypeError(`not a sysctl key: ${JSON.stringify(key)}`);
  return '/proc/sys/' + parts.join('/');
}

export function isSysctlGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** Does an assignment's key (possibly a systemd glob: * ? [...]) apply to this exact key? */
export function sysctlKeyMatches(pattern: string, key: string): boolean {
  if (!isSysctlGlob(pattern)) return pattern === key;
  return globToRegExp(pattern).test(key);
}

const globCache = new Map<string, RegExp>();

function globToRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (re === undefined) {
    let source = '';
    for (let i = 0; i < glob.length; i++) {
      const c = glob[i] as string;
      if (c === '*') source += '[^.]*';
      else if (c === '?') source += '[^.]';
      else if (c === '[') {
        const close = glob.indexOf(']', i + 1);
        if (close < 0) source += '\\[';
        else {
          source +=
            '[' +
            glob
              .slice(i + 1, close)
              .replace(/^!/, '^')
              .replace(/\\/g, '\\\\') +
            ']';
          i = close;
        }
      } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
    }
    re = new RegExp(`^${source}$`);
    globCache.set(glob, re);
  }
  return re;
}

function truncate(text: string): string {
  return text.length > 120 ? text.slice(0, 117) + '...' : text;
}

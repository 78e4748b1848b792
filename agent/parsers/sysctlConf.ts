// sysctl.d(5) / sysctl.conf(5) file syntax, as both systemd-sysctl and procps `sysctl --system`
// read it. Pure: text in, assignments out.

export interface SysctlAssignment {
  /** Canonical dotted key (see normalizeSysctlKey); may be a systemd glob such as net.ipv4.conf.*.rp_filter. */
  key: string;
  value: string;
  /** 1-based line number. */
  line: number;
  /** A leading "-": failure to apply it is ignored by systemd-sysctl/procps. */
  ignoreFailure: boolean;
}

export interface SysctlConfLineError {
  line: number;
  text: string;
  reason: string;
}

export interface SysctlConf {
  assignments: SysctlAssignment[];
  invalid: SysctlConfLineError[];
  /** NUL bytes: not a text file at all; nothing in it is applied. */
  binary: boolean;
}

export function parseSysctlConf(text: string): SysctlConf {
  if (text.includes('\0')) return { assignments: [], invalid: [], binary: true };
  const assignments: SysctlAssignment[] = [];
  const invalid: SysctlConfLineError[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let body = (lines[i] ?? '').trim();
    if (body === '' || body.startsWith('#') || body.startsWith(';')) continue;
    const ignoreFailure = body.startsWith('-');
    if (ignoreFailure) body = body.slice(1).trimStart();
    const eq = body.indexOf('=');
    if (eq < 0) {
      invalid.push({ line: i + 1, text: truncate(body), reason: "missing '='" });
      continue;
    }
    const rawKey = body.slice(0, eq).trim();
    const value = body.slice(eq + 1).trim();
    if (rawKey === '') {
      invalid.push({ line: i + 1, text: truncate(body), reason: 'empty key' });
    } else if (/\s/.test(rawKey)) {
      invalid.push({ line: i + 1, text: truncate(body), reason: 'key contains whitespace' });
    } else {
      assignments.push({ key: normalizeSysctlKey(rawKey), value, line: i + 1, ignoreFailure });
    }
  }
  return { assignments, invalid, binary: false };
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

/** The /proc/sys path of a canonical dotted key. */
export function sysctlProcPath(key: string): string {
  const dotted = normalizeSysctlKey(key);
  return (
    '/proc/sys/' +
    dotted
      .split('.')
      .map((part) => part.replace(/\//g, '.'))
      .join('/')
  );
}

/** Does an assignment's key (possibly a systemd glob: * ? [...]) apply to this exact key? */
export function sysctlKeyMatches(pattern: string, key: string): boolean {
  if (!/[*?[]/.test(pattern)) return pattern === key;
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

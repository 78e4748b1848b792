// One line of a syslog file (/var/log/syslog, /var/log/messages, kern.log) or of `journalctl`'s
// text output: the time, the host, the program ("identifier", with its pid) and the message.
// Pure: text in, fields out.
//
//   Feb 20 12:14:49 k1-node01 kubelet[31100]: E0220 12:14:49.401890   31100 raw.go:146] ...
//   2024-10-01T11:34:07.899178+02:00 debian-node1 kubelet[1914]: E1001 11:34:07.899084 ...
//   Aug 30 06:58:55.050705 host kernel: oom-kill:constraint=CONSTRAINT_MEMCG,...
//   Jul 14 10:26:29 immortal kernel: [699646.295473] EXT4-fs error (device sdf): ...
//   May 27 16:44:51 node kubelet: E0527 ... (no pid: Amazon Linux 2)

export interface SyslogLine {
  /** Milliseconds since the epoch; undefined when the line has no time this parser knows. */
  time?: number;
  host?: string;
  /** The program: "kubelet", "systemd", "kernel", "containerd"... */
  identifier?: string;
  pid?: number;
  /** What rules match: the text after "ident[pid]: ", without the kernel's "[12345.678901] ". */
  message: string;
}

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

// BSD (RFC 3164) time, optionally with microseconds (journalctl -o short-precise); or RFC 3339
// (rsyslog's high-precision format, Debian 12's default; journalctl -o short-iso); or a
// localised month ("6月 12 08:55:47", journalctl in another locale: the time is not known).
const HEADER =
  /^(?:([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(\.\d{1,9})?|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)|\S+ +\d{1,2} \d\d:\d\d:\d\d(?:\.\d{1,9})?) +(\S+) (.*)$/;
/** "kubelet[31100]: ", "kubelet: ", "(kubelet)[744]: " (systemd's forked child). */
const TAG = /^([^\s[:]+)(?:\[(\d+)\])?: ?/;
const KERNEL_TIME = /^\[\s*\d+\.\d+\]\s?/;
/** A time this far after the reference is from last year (syslog lines carry no year). */
const FUTURE_SLACK_MS = 2 * 24 * 3600 * 1000;

/**
 * Parse one line. `referenceMs` stands for "now" when the line has no year: the year is the one
 * that does not put the line more than two days after it (the file's mtime for saved logs).
 * Times without a zone are local time (the host's; see hostTimeZone.ts).
 */
export function parseSyslogLine(line: string, referenceMs: number): SyslogLine {
  const header = HEADER.exec(line);
  if (header === null) return { message: line };
  const [, mon, day, hh, mm, ss, frac, iso, host, rest = ''] = header;
  let time: number | undefined;
  if (iso !== undefined) {
    const ms = Date.parse(isoWithMillis(iso));
    time = Number.isNaN(ms) ? undefined : ms;
  } else if (mon !== undefined) {
    const month = MONTHS[mon];
    if (month !== undefined) {
      const millis = frac === undefined ? 0 : Math.floor(Number(frac) * 1000);
      const at = (year: number) =>
        new Date(year, month, Number(day), Number(hh), Number(mm), Number(ss), millis).getTime();
      const year = new Date(referenceMs).getFullYear();
      time = at(year);
      if (time > referenceMs + FUTURE_SLACK_MS) time = at(year - 1);
    }
  }
  const tag = TAG.exec(rest);
  const out: SyslogLine = { message: rest };
  if (time !== undefined) out.time = time;
  if (host !== undefined) out.host = host;
  if (tag !== null) {
    const identifier = tag[1] ?? '';
    out.identifier = identifier;
    if (tag[2] !== undefined) out.pid = Number(tag[2]);
    out.message = rest.slice(tag[0].length);
    if (identifier === 'kernel') out.message = out.message.replace(KERNEL_TIME, '');
  }
  return out;
}

/** Date.parse takes at most milliseconds and wants "+02:00", not "+0200". */
function isoWithMillis(iso: string): string {
  return iso.replace(/(\.\d{3})\d+/, '$1').replace(/([+-]\d\d)(\d\d)$/, '$1:$2');
}

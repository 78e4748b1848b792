// Command lines of the daemons the checks audit (kubelet, dockerd): how /proc gives them, and
// how their Go flag libraries (pflag, dockerd's) read a boolean.

/** /proc/<pid>/cmdline: arguments separated (and ended) by NUL bytes. */
export function splitCmdline(cmdline: Buffer | string): string[] {
  const text = typeof cmdline === 'string' ? cmdline : cmdline.toString('utf8');
  const parts = text.split('\0');
  // The kernel ends the last argument with a NUL too: the split leaves one empty string behind.
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

/** Go's strconv.ParseBool, which both pflag and dockerd use for "--flag=value". */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

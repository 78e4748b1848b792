// A node's syslog as the log benchmarks feed it: kubelet, containerd, systemd, kernel, cron and
// sshd chatter (mostly lines that share words with the rules but are no problem), with a problem
// line now and then. Deterministic: line i is always the same line.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

const HOST = 'k1-node01';

const CHATTER: ((i: number) => string)[] = [
  (i) =>
    `kubelet[31100]: I1122 10:00:00.${String(i % 1_000_000).padStart(6, '0')}   31100 kubelet.go:2405] "SyncLoop (PLEG): event for pod" pod="default/web-${i % 97}" event=&{ID:a1b2 Type:ContainerStarted Data:c3d4}`,
  (i) =>
    `containerd[812]: time="2026-11-22T10:00:00.${i % 1000}Z" level=info msg="StartContainer for \\"${(i * 7919).toString(16)}\\" returns successfully"`,
  (i) => `systemd[1]: Started Session ${i} of user ubuntu.`,
  (i) =>
    `kernel: [${(i / 10).toFixed(6)}] IPv4: martian source 10.0.0.${i % 255} from 10.0.1.${i % 200}, on dev eth0`,
  (i) => `CRON[${i % 30000}]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)`,
  (i) =>
    `kubelet[31100]: I1122 10:00:00.000000   31100 reconciler.go:357] "operationExecutor.VerifyControllerAttachedVolume started for volume \\"kube-api-access-${i % 1000}\\""`,
  () =>
    'dockerd[900]: time="2026-11-22T10:00:00Z" level=warning msg="Your kernel does not support cgroup blkio weight"',
  (i) =>
    `sshd[${i % 40000}]: Accepted publickey for ubuntu from 10.0.0.${i % 250} port ${i % 65535} ssh2: RSA SHA256:abcdef`,
  (i) =>
    `kubelet[31100]: E1122 10:00:00.000000   31100 pod_workers.go:1298] "Error syncing pod, skipping" err="failed to \\"StartContainer\\" for \\"app\\" with CrashLoopBackOff" pod="default/app-${i % 13}"`,
  () =>
    'containerd[812]: time="2026-11-22T10:00:00Z" level=error msg="copy shim log" error="read /proc/self/fd/17: file already closed"',
];

const PROBLEMS: string[] = [
  'kubelet[31100]: E1122 10:00:00.401890   31100 raw.go:146] Failed to watch directory "/sys/fs/cgroup/devices/system.slice": inotify_add_watch /sys/fs/cgroup/devices/system.slice/x.scope: no space left on device',
  'kubelet[31100]: E1122 10:00:00.000000   31100 kubelet.go:2163] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m12.1s ago; threshold is 3m0s"',
  'kernel: [ 9432.854807] Memory cgroup out of memory: Killed process 4242 (java) total-vm:8388608kB, anon-rss:4194304kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:8448kB oom_score_adj:-997',
  'systemd[1]: kubelet.service: Main process exited, code=exited, status=255/n/a',
];

/** Line i: a problem line once every `problemEvery` lines, chatter otherwise. */
export function syslogLine(i: number, problemEvery = 5000): string {
  const second = Math.floor(i / 1000);
  const stamp = `Nov 22 10:${String(Math.floor(second / 60) % 60).padStart(2, '0')}:${String(second % 60).padStart(2, '0')}`;
  const body =
    i % problemEvery === problemEvery - 1
      ? (PROBLEMS[Math.floor(i / problemEvery) % PROBLEMS.length] ?? '')
      : (CHATTER[i % CHATTER.length]?.(i) ?? '');
  return `${stamp} ${HOST} ${body}`;
}

/** Write `count` lines to a file; resolves with its size in bytes. */
export async function writeSyslog(
  file: string,
  count: number,
  problemEvery?: number,
): Promise<number> {
  const out = createWriteStream(file);
  let bytes = 0;
  let chunk: string[] = [];
  for (let i = 0; i < count; i++) {
    chunk.push(syslogLine(i, problemEvery));
    if (chunk.length === 10_000 || i === count - 1) {
      const text = chunk.join('\n') + '\n';
      bytes += Buffer.byteLength(text);
      chunk = [];
      if (!out.write(text)) await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}

// `pause`: every pod sandbox's infra process, as the seeds analyse pause.c. Its main() makes it
// PID 1 of the pod's PID namespace, installs sigdown for SIGINT and SIGTERM (exit cleanly when
// the sandbox is stopped) and sigreap for SIGCHLD (waitpid(-1, NULL, WNOHANG) in a loop, so
// orphans re-parented to it never stay zombies), then pause()s forever. A sandbox whose infra
// process is not PID 1, does not catch those signals, or is itself a zombie does not do that job.
//
// A pod with hostPID shares the host's PID namespace on purpose: its pause is not PID 1 and
// should not be, so it is not reported.
import * as v from 'valibot';
import { byCodeUnit, draft } from '../../findings/finding.ts';
import type { FindingDraft, Severity } from '../../findings/finding.ts';
import { SIGNALS, hasSignal, signalNames } from '../../parsers/procStatus.ts';
import { DEFAULT_INFRA_COMMANDS, describeOwner, ownerOf } from '../../procfs/processOwner.ts';
import type { ProcessOwner } from '../../procfs/processOwner.ts';
import { isNamespaceInit } from '../../procfs/processScanner.ts';
import type { ProcessInfo } from '../../procfs/processScanner.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { Check } from '../check.ts';
import { processScans } from '../processChecks.ts';

const options = {
  /** Process names (comm) of pod infra processes: the pause image's binary is /pause. */
  infraCommands: v.optional(
    v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(15))), v.minLength(1)),
    [...DEFAULT_INFRA_COMMANDS],
  ),
};

const SANDBOX_STATES = [
  'ok',
  'not_pid1',
  'no_sigchld_handler',
  'not_reaping',
  'no_term_handler',
  'zombie',
] as const;
export type SandboxState = (typeof SANDBOX_STATES)[number];

export interface Sandbox {
  process: ProcessInfo;
  owner: ProcessOwner;
  state: SandboxState;
  /** Every problem found, most serious first (state is the first, or ok). */
  problems: Exclude<SandboxState, 'ok'>[];
}

/**
 * A sandbox's problems from its infra process's stat and status, and its zombie children: pause
 * reaps in its SIGCHLD handler, so one that has zombies is not reaping, whatever its masks say.
 */
function judgeSandbox(p: ProcessInfo, zombieChildren: number): Sandbox['problems'] {
  const problems: Sandbox['problems'] = [];
  if (p.state === 'Z') problems.push('zombie');
  // one NSpid entry: a hostPID pod, in the host's namespace on purpose (not judged)
  if ((p.status?.nspid.length ?? 0) > 1 && !isNamespaceInit(p)) problems.push('not_pid1');
  // A zombie's signal masks are gone with it; only a live process is judged on them.
  if (p.state !== 'Z' && p.status != null) {
    if (!hasSignal(p.status.sigCgt, SIGNALS.SIGCHLD)) problems.push('no_sigchld_handler');
    else if (zombieChildren > 0) problems.push('not_reaping');
    if (!hasSignal(p.status.sigCgt, SIGNALS.SIGINT) || !hasSignal(p.status.sigCgt, SIGNALS.SIGTERM))
      problems.push('no_term_handler');
  }
  return problems;
}

const PROBLEM: Record<
  Exclude<SandboxState, 'ok'>,
  { problem: string; severity: Severity; title: string; why: string; fix: string }
> = {
  zombie: {
    problem: 'PauseZombie',
    severity: 'warning',
    title: 'pod infra process is a zombie',
    why: 'The infra process has exited and nothing has reaped it: the sandbox is dead, so every container sharing its namespaces is cut off.',
    fix: 'Check the container runtime ("crictl pods", "journalctl -u containerd"): the runtime shim should have reaped it and the kubelet recreated the sandbox. Deleting the pod recreates it.',
  },
  not_pid1: {
    problem: 'PauseNotPid1',
    severity: 'warning',
    title: "pod infra process is not PID 1 of the pod's PID namespace",
    why: "Orphaned processes of the pod are re-parented to the namespace's PID 1, not to pause, so pause's SIGCHLD handler never reaps them.",
    fix: 'Run the sandbox without an injected init (no docker --init or runtime default init for the sandbox) so that /pause is its first process, as the runtime normally starts it.',
  },
  no_sigchld_handler: {
    problem: 'PauseNoSigchldHandler',
    severity: 'warning',
    title: 'pod infra process does not catch SIGCHLD',
    why: 'Without a SIGCHLD handler (sigreap) it never calls waitpid(), so with a shared PID namespace every orphan of the pod stays a zombie.',
    fix: "Use the upstream pause image (registry.k8s.io/pause), whose pause.c installs sigreap for SIGCHLD; set it as the runtime's sandbox image (containerd: sandbox_image in /etc/containerd/config.toml; CRI-O: pause_image).",
  },
  not_reaping: {
    problem: 'PauseNotReaping',
    severity: 'warning',
    title: 'pod infra process leaves its children zombies',
    why: 'It catches SIGCHLD but has zombie children: its handler does not waitpid() them, so every orphan of the pod stays a zombie and holds a PID.',
    fix: "Use the upstream pause image (registry.k8s.io/pause), whose sigreap loops waitpid(-1, NULL, WNOHANG); set it as the runtime's sandbox image.",
  },
  no_term_handler: {
    problem: 'PauseNoTermHandler',
    severity: 'warning',
    title: 'pod infra process does not catch SIGINT and SIGTERM',
    why: "Without the sigdown handler, stopping the sandbox waits for the runtime's kill timeout and then SIGKILL, instead of a clean exit.",
    fix: 'Use the upstream pause image (registry.k8s.io/pause), whose pause.c installs sigdown for SIGINT and SIGTERM.',
  },
};

function evidenceOf(s: Sandbox, zombies: number): string[] {
  const p = s.process;
  const lines = [`${p.comm} pid ${p.pid} (state ${p.state}), parent pid ${p.ppid}`];
  if (p.status != null) {
    lines.push(`NSpid: ${p.status.nspid.join(' ')}`);
    lines.push(
      `SigCgt: ${p.status.sigCgt} (catches ${signalNames(p.status.sigCgt).join(', ') || 'none of SIGINT, SIGTERM, SIGCHLD'})`,
    );
  }
  if (p.pidNs !== undefined) lines.push(`PID namespace: pid:[${p.pidNs}]`);
  if (p.cgroup != null) lines.push(`cgroup: ${p.cgroup.path}`);
  if (zombies > 0) lines.push(`zombie children: ${zombies}`);
  return lines;
}

export const pauseCheck: Check<typeof options> = {
  id: 'pause',
  title: 'Pod infra (pause) processes',
  description:
    "Checks each pod sandbox's pause process is PID 1 of the pod's PID namespace, alive, and catches SIGCHLD (reaps zombies), SIGINT and SIGTERM.",
  defaults: { enabled: true, interval: '60s', timeout: '30s' },
  options,
  async run(context) {
    // the shared pass reads the status and cgroup of these every scan (set from this option
    // when the config loads); judged with the set the scan was made with
    const scan = await processScans(context, context.options.infraCommands).get(context.signal);
    const infra = scan.infraCommands;
    const zombieChildren = (pid: number) => scan.zombiesByParent.get(pid)?.length ?? 0;
    const sandboxes: Sandbox[] = [];
    for (const p of scan.processes) {
      if (!infra.has(p.comm) || p.cgroup?.podUid === undefined) continue;
      const problems = judgeSandbox(p, zombieChildren(p.pid));
      sandboxes.push({
        process: p,
        owner: ownerOf(p, context.services.pods, infra),
        state: problems[0] ?? 'ok',
        problems,
      });
    }
    const counts = new Map<SandboxState, number>(SANDBOX_STATES.map((s) => [s, 0]));
    for (const s of sandboxes) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
    const samples: MetricSample[] = SANDBOX_STATES.map((state) => ({
      metric: 'node_auditor_pod_sandboxes',
      labels: { state },
      value: counts.get(state) ?? 0,
    }));
    const findings: FindingDraft[] = [];
    for (const s of sandboxes) {
      for (const problem of s.problems) {
        const what = PROBLEM[problem];
        const pod = describeOwner({ ...s.owner, container: '' });
        findings.push(
          draft(what.problem, s.owner.podUid, {
            severity: what.severity,
            title: `${what.title}: ${pod}`,
            message: `The infra process of ${pod} (${s.process.comm}, pid ${s.process.pid}): ${what.why}`,
            evidence: evidenceOf(s, zombieChildren(s.process.pid)),
            remediation: { summary: what.fix, automatic: false },
          }),
        );
      }
    }
    findings.sort((a, b) => byCodeUnit(a.id, b.id));
    return { findings, samples };
  },
};

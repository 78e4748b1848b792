// What one answer of the kubelet to a request without credentials means. Only what a kubelet
// really sends counts (pkg/kubelet/server/server.go): 401 "Unauthorized" from its authentication
// filter (anonymous authentication off), 403 "Forbidden (user=system:anonymous, ...)" from its
// authorization filter (anonymous on, denied), 200 with the body that path serves (anonymous on,
// allowed). Anything else (404, 500, another server's page) says nothing about anonymous access
// and is never guessed to be an exposure.
import { STATUS_CODES } from 'node:http';
import { unreachableReason } from '../../kubernetes/anonymousProbe.ts';
import type { AnonymousAnswer } from '../../kubernetes/anonymousProbe.ts';
import { parseKubeletForbidden } from '../../parsers/kubeletForbidden.ts';
import type { KubeletForbidden } from '../../parsers/kubeletForbidden.ts';

/** The paths probed on port 10250 (also the only values of the metric's path label). */
export const KUBELET_PATHS = [
  '/pods',
  '/healthz',
  '/metrics',
  '/stats/summary',
  '/configz',
] as const;
export type KubeletPath = (typeof KUBELET_PATHS)[number];

export type Verdict =
  /** 200 with what the kubelet serves on that path: the request got through. */
  | { kind: 'allowed'; summary: string }
  /** 401 "Unauthorized": anonymous authentication is off. */
  | { kind: 'unauthenticated'; summary: string }
  /** 403 for system:anonymous: authenticated anonymously, denied by authorization. */
  | { kind: 'forbidden'; forbidden: KubeletForbidden; summary: string }
  /** An HTTP answer that is not one of the kubelet's to this question. */
  | { kind: 'unexpected'; summary: string }
  /** No HTTP answer at all. */
  | { kind: 'unreachable'; code: string; summary: string };

/** The most of an answer's body that is read: a /pods answer can be megabytes. */
export const MAX_BODY_BYTES = 64 * 1024;

// The start of each path's 200 body (the body is read to MAX_BODY_BYTES at most, never parsed):
const KUBELET_200: Record<KubeletPath, RegExp> = {
  // runtime.Encode of a v1.PodList: {"kind":"PodList","apiVersion":"v1",...}
  '/pods': /"kind"\s*:\s*"PodList"/,
  '/healthz': /^ok\s*$/,
  // Prometheus text exposition: comments or a sample first
  '/metrics': /^(?:# (?:HELP|TYPE) [a-zA-Z_:]|[a-zA-Z_:][a-zA-Z0-9_:]*[{ ])/,
  // go-restful's WriteAsJson of statsapi.Summary (indented), node first
  '/stats/summary': /^\s*\{\s*"node"\s*:/,
  // configz's json.Marshal of its map of registered configs: only "kubeletconfig" in a kubelet
  '/configz': /^\s*\{\s*"kubeletconfig"\s*:/,
};

const ANONYMOUS_USER = 'system:anonymous';

/** What the answer to GET `path` without credentials says about anonymous access. */
export function classifyAnswer(path: KubeletPath, answer: AnonymousAnswer): Verdict {
  if (answer.kind === 'unreachable') {
    return { kind: 'unreachable', code: answer.code, summary: unreachableReason(answer) };
  }
  const { status, body } = answer;
  const statusLine = `${status} ${STATUS_CODES[status] ?? ''}`.trim();
  if (status === 200) {
    // A 200's body is never echoed: /pods and /configz carry pod specs, env values, config.
    const what = `${statusLine}, ${answer.contentType || 'no Content-Type'}, ${
      answer.truncated
        ? `more than ${MAX_BODY_BYTES / 1024} KiB (not read further)`
        : `${Buffer.byteLength(body)} bytes`
    }`;
    if (KUBELET_200[path].test(body)) return { kind: 'allowed', summary: what };
    return { kind: 'unexpected', summary: `${what}: not what a kubelet serves on ${path}` };
  }
  if (status === 401 && body.trim() === 'Unauthorized') {
    return { kind: 'unauthenticated', summary: `${statusLine}: Unauthorized` };
  }
  if (status === 403) {
    const forbidden = parseKubeletForbidden(body);
    if (forbidden?.user === ANONYMOUS_USER) {
      return { kind: 'forbidden', forbidden, summary: `${statusLine}: ${body.trim()}` };
    }
  }
  return { kind: 'unexpected', summary: `${statusLine}: ${firstLine(body)}` };
}

/** The first line of an error body, short and printable, for evidence. */
function firstLine(body: string): string {
  // eslint-disable-next-line no-control-regex -- strip control characters from a server's text
  const line = (body.split('\n', 1)[0] ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  if (line === '') return '(empty body)';
  return line.length > 160 ? `${line.slice(0, 160)}...` : line;
}

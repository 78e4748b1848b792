// The body of the kubelet's 403: what its authorization filter (pkg/kubelet/server/server.go,
// InstallAuthFilter) says when it has authenticated a request but the authorizer denies it.
// It names the user the request was authenticated as and the permission checked, which is how a
// 403 for user=system:anonymous proves that anonymous authentication is on.
//
// Two forms, both written by go-restful's WriteErrorString (text/plain, sniffed):
// - before v1.32, one permission, no newline:
//     Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)
// - since v1.32 (KEP-2862, fine-grained kubelet authorization), every subresource tried in
//   order (the fine-grained one first, then nodes/proxy as the fallback), Go's %v of a
//   []string, with a newline:
//     Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[pods proxy])

export interface KubeletForbidden {
  user: string;
  verb: string;
  resource: string;
  /** The subresources the kubelet asked its authorizer about, in the order it asked. */
  subresources: string[];
  /** `single`: kubelets before v1.32; `list`: v1.32 and later. */
  form: 'single' | 'list';
}

// Anchored, no nested quantifiers: the text is at most a few hundred bytes of a server's answer.
const SINGLE =
  /^Forbidden \(user=([^,]+), verb=([^,]+), resource=([^,]+), subresource=([^,()[\]]*)\)$/;
const LIST =
  /^Forbidden \(user=([^,]+), verb=([^,]+), resource=([^,]+), subresource\(s\)=\[([^\]]*)\]\)$/;

/** The kubelet's Forbidden text, parsed; undefined for anything else (another server's 403). */
export function parseKubeletForbidden(body: string): KubeletForbidden | undefined {
  const text = body.trim();
  const single = SINGLE.exec(text);
  if (single !== null) {
    const [, user = '', verb = '', resource = '', subresource = ''] = single;
    return { user, verb, resource, subresources: [subresource], form: 'single' };
  }
  const list = LIST.exec(text);
  if (list !== null) {
    const [, user = '', verb = '', resource = '', subresources = ''] = list;
    return {
      user,
      verb,
      resource,
      subresources: subresources.split(' ').filter((s) => s !== ''),
      form: 'list',
    };
  }
  return undefined;
}

/** "get nodes/pods or nodes/proxy": the permission(s) a Forbidden says were checked. */
export function describePermission(forbidden: KubeletForbidden): string {
  const names = forbidden.subresources.map((s) =>
    s === '' ? forbidden.resource : `${forbidden.resource}/${s}`,
  );
  return `${forbidden.verb} ${names.length === 0 ? forbidden.resource : names.join(' or ')}`;
}

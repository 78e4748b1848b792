// The kubelet's 403 text in both of its forms (before and since v1.32), and what is not it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describePermission, parseKubeletForbidden } from '../../agent/parsers/kubeletForbidden.ts';

test('the single-subresource form of kubelets before v1.32 (as metrics-server logs it)', () => {
  const parsed = parseKubeletForbidden(
    'Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=stats)',
  );
  assert.deepEqual(parsed, {
    user: 'system:anonymous',
    verb: 'get',
    resource: 'nodes',
    subresources: ['stats'],
    form: 'single',
  });
  assert.equal(describePermission(parsed), 'get nodes/stats');
});

test('the subresource(s) list of v1.32+ (fine-grained authorization), with its newline', () => {
  const parsed = parseKubeletForbidden(
    'Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[pods proxy])\n',
  );
  assert.deepEqual(parsed, {
    user: 'system:anonymous',
    verb: 'get',
    resource: 'nodes',
    subresources: ['pods', 'proxy'],
    form: 'list',
  });
  assert.equal(describePermission(parsed), 'get nodes/pods or nodes/proxy');
  const one = parseKubeletForbidden(
    'Forbidden (user=system:serviceaccount:monitoring:prometheus, verb=create, resource=nodes, subresource(s)=[proxy])\n',
  );
  assert.equal(one?.user, 'system:serviceaccount:monitoring:prometheus');
  assert.equal(describePermission(one), 'create nodes/proxy');
  // Go's %v of an empty slice
  const none = parseKubeletForbidden(
    'Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[])\n',
  );
  assert.deepEqual(none?.subresources, []);
  assert.equal(describePermission(none), 'get nodes');
});

test('anything else is not the kubelet Forbidden', () => {
  for (const text of [
    '',
    'Unauthorized',
    'Forbidden',
    // the API server's 403 is a Status object
    '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden: User \\"system:anonymous\\" cannot get path \\"/pods\\"","reason":"Forbidden","code":403}',
    // kube-rbac-proxy's: same prefix, more after it
    'Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=metrics): no RBAC policy matched',
    'Authorization error (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)',
    'Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[pods proxy]',
    'forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)',
    '<html><body>403 Forbidden</body></html>',
    'Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)\nmore',
  ]) {
    assert.equal(parseKubeletForbidden(text), undefined, text);
  }
});

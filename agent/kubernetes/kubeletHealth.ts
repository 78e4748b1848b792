// Without an API, node readiness comes from the local kubelet's healthz (DESIGN.md): 200 "ok"
// means healthy. Plain HTTP on loopback, bounded time.
import http from 'node:http';

export async function probeKubeletHealth(url: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 1024) body += chunk;
      });
      res.on('end', () => {
        resolve(res.statusCode === 200 && body.trim() === 'ok');
      });
      res.on('error', () => {
        resolve(false);
      });
    });
    req.on('timeout', () => {
      req.destroy(new Error('timeout'));
    });
    req.on('error', () => {
      resolve(false);
    });
  });
}

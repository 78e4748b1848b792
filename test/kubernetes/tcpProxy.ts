// A TCP proxy between one client and the API server, to break the network under it the ways
// real networks break: cut (connections reset, new ones refused) or stall (a black hole:
// connections open, old and new, but carry nothing, as behind a wedged load balancer or a
// stale conntrack entry). resume() lets new connections through again; stalled ones stay dead.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** Every connection, open or new, goes silent. */
  stall(): void;
  /** New connections work again (the stalled ones stay silent). */
  resume(): void;
  /** Existing connections are reset and new ones refused. */
  cut(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; stalled: boolean }>();
  let refusing = false;
  let blackHole = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, stalled: blackHole };
    pairs.add(pair);
    client.on('data', (d) => {
      if (!pair.stalled) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!pair.stalled) client.write(d);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', () => {
      if (!pair.stalled) end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    stall() {
      blackHole = true;
      for (const pair of pairs) pair.stalled = true;
    },
    resume() {
      blackHole = false;
    },
    cut() {
      refusing = true;
      for (const pair of pairs) {
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
      }
      pairs.clear();
    },
    async close() {
      refusing = true;
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}

// Is a container runtime alive on its socket? Connecting is not enough: a hung process still
// has its listening socket, and the kernel completes the connection from the listen backlog.
// So the probe speaks first and waits for the runtime itself to answer:
// - gRPC runtimes (containerd, CRI-O, cri-dockerd): the HTTP/2 client preface and an empty
//   SETTINGS frame; every HTTP/2 server answers with its own SETTINGS frame at once;
// - dockerd: GET /_ping, answered "OK".
// Nothing is asked of the runtime beyond that (no CRI call, no credentials).
import net from 'node:net';
import { errnoCode } from '../../errors.ts';

export type ProbeProtocol = 'grpc' | 'http';

export type ProbeResult =
  /** No socket there: this runtime is not installed (or not running and cleaned up). */
  | { state: 'absent' }
  | { state: 'up' }
  | { state: 'refused'; detail: string }
  | { state: 'timeout'; detail: string }
  | { state: 'denied'; detail: string }
  | { state: 'error'; detail: string };

const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** An empty SETTINGS frame: length 0, type 0x4, flags 0, stream 0. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 0x04, 0, 0, 0, 0, 0]);
const SETTINGS = 0x04;

export function probeRuntime(
  socketPath: string,
  protocol: ProbeProtocol,
  timeoutMs: number,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let done = false;
    const socket = net.connect({ path: socketPath });
    const finish = (result: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => {
      finish({
        state: 'timeout',
        detail: `${socket.connecting ? 'could not connect' : 'connected, but no answer'} within ${timeoutMs} ms`,
      });
    }, timeoutMs);
    socket.on('connect', () => {
      socket.write(
        protocol === 'grpc'
          ? Buffer.concat([HTTP2_PREFACE, EMPTY_SETTINGS])
          : 'GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n',
      );
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]).subarray(0, 4096);
      if (protocol === 'grpc') {
        // A frame header is 9 bytes: 24-bit length, type, flags, stream id.
        if (received.length >= 9) {
          finish(
            received[3] === SETTINGS
              ? { state: 'up' }
              : {
                  state: 'error',
                  detail: `answered, but not with HTTP/2 (frame type ${received[3] ?? '?'})`,
                },
          );
        }
      } else if (received.includes(0x0a)) {
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(received.toString('latin1'))?.[1];
        finish(
          status === '200'
            ? { state: 'up' }
            : {
                state: 'error',
                detail: `answered /_ping with ${status ?? 'something that is not HTTP'}`,
              },
        );
      }
    });
    socket.on('end', () => {
      finish({ state: 'error', detail: 'closed the connection without answering' });
    });
    socket.on('error', (error) => {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        finish({ state: 'absent' });
      } else if (code === 'ECONNREFUSED') {
        finish({ state: 'refused', detail: 'connection refused: nothing listens on the socket' });
      } else if (code === 'EACCES' || code === 'EPERM') {
        finish({ state: 'denied', detail: 'permission denied (the agent needs root to probe it)' });
      } else {
        finish({ state: 'error', detail: error.message });
      }
    });
  });
}

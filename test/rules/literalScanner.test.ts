// The prefilter against the obvious answer: for every line, the owners whose literal occurs in it
// (case folded), found by String.prototype.includes. Chunks are scanned the way the file follower
// hands them over: one reused buffer, lines starting at offset 0 again and again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LiteralScanner } from '../../agent/rules/literalScanner.ts';
import type { LiteralOwner } from '../../agent/rules/literalScanner.ts';

const LITERALS: LiteralOwner[] = [
  { text: 'no space left on device', owner: 0 },
  { text: 'failed to start cadvisor', owner: 1 },
  { text: 'pleg is not healthy', owner: 2 },
  { text: 'main process exited', owner: 3 },
  { text: 'killed process', owner: 3 },
];

function expected(line: string): number[] {
  const lower = line.toLowerCase();
  return [...new Set(LITERALS.filter((l) => lower.includes(l.text)).map((l) => l.owner))].sort();
}

/** Every line with a hit, as [line, owners] , from one scanBytes call over `buffer[0..end)`. */
function scan(scanner: LiteralScanner, buffer: Buffer, end: number): [string, number[]][] {
  const out: [string, number[]][] = [];
  scanner.scanBytes(buffer, 0, end, false, (start, lineEnd, owners, count) => {
    out.push([
      buffer.toString('utf8', start, lineEnd),
      Array.from(owners.subarray(0, count)).sort(),
    ]);
  });
  return out;
}

const LINES = [
  'Failed to start cAdvisor inotify_add_watch /sys/fs/cgroup: no space left on device',
  'Nov 22 10:00:00 k1 kubelet[1]: I1122 "SyncLoop (PLEG): event for pod"',
  'PLEG is not healthy: pleg was last seen active 3m0s ago',
  'kubelet.service: Main process exited, code=exited, status=255/n/a',
  'Nov 22 10:00:01 k1 kernel: Killed process 4242 (java) and its main process exited',
  'ünïcödé before: no space left on device',
  'nothing here',
];

describe('literal prefilter', () => {
  it('finds the literals of each line, also one at the very start of the buffer', () => {
    const scanner = new LiteralScanner(LITERALS, 4);
    const text = LINES.join('\n') + '\n';
    const buffer = Buffer.from(text);
    assert.deepEqual(
      scan(scanner, buffer, buffer.length),
      LINES.filter((l) => expected(l).length > 0).map((l) => [l, expected(l)]),
    );
  });

  it('finds them again in the next chunk read into the same buffer at the same offsets', () => {
    const scanner = new LiteralScanner(LITERALS, 4);
    const buffer = Buffer.alloc(4096);
    for (const line of [LINES[0], LINES[0], LINES[2], LINES[0]] as string[]) {
      const end = buffer.write(`${line}\n`);
      assert.deepEqual(scan(scanner, buffer, end), [[line, expected(line)]], line);
    }
  });

  it('scanText finds what scanBytes finds, in every line of a multi-line message', () => {
    const scanner = new LiteralScanner(LITERALS, 4);
    for (const line of LINES) assert.deepEqual(scanner.scanText(line).sort(), expected(line), line);
    const message = `${LINES[3]}\nstack:\n${LINES[2]}`;
    assert.deepEqual(scanner.scanText(message).sort(), [2, 3]);
    assert.deepEqual(scanner.scanText(`${'x'.repeat(5000)}${LINES[0] ?? ''}`).sort(), [0, 1]);
  });
});

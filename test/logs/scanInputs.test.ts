// What scan-logs makes of its inputs before reading them (agent/logs/scanInputs.ts): the parts
// its command-line tests (test/cli/scanLogs.test.ts) cannot see from outside the process.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { gunzipHead, resolveInputs } from '../../agent/logs/scanInputs.ts';
import { sleep, tempDir } from '../helpers.ts';

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

test('sniffing .gz files leaves no file open', async (t) => {
  const dir = await tempDir(t);
  const line = 'Feb 20 12:14:50 k1-node01 systemd[1]: Started Session 3 of user root.\n';
  // more than one chunk of the file stream each, so that reading stops before the end
  const text = gzipSync(Buffer.from(line.repeat(20_000)));
  for (let i = 1; i <= 60; i++) await fs.writeFile(path.join(dir, `syslog.${i}.gz`), text);
  await resolveInputs([dir]); // the first use loads what it needs once
  await sleep(100); // closes are asynchronous
  const before = openDescriptors();
  const { inputs } = await resolveInputs([dir]);
  assert.equal(inputs.length, 60);
  await sleep(100);
  // one descriptor was left open per .gz: 60 more here
  assert.equal(openDescriptors(), before);
});

test('a .gz whose file cannot be read is an error, not a wait', async (t) => {
  const dir = await tempDir(t);
  // pipe() did not pass the file's error on: the gunzip waited for data forever
  const head = gunzipHead(path.join(dir, 'gone.gz'));
  const settled = await Promise.race([
    head.then(
      () => 'resolved',
      (error: unknown) => (error as { code?: string }).code,
    ),
    sleep(3000).then(() => 'still waiting after 3 s'),
  ]);
  assert.equal(settled, 'ENOENT');
});

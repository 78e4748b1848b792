// The Dockerfile, linted by a real Dockerfile linter (dockerfilelint) and its contract read as
// text (no Docker engine here: ENVIRONMENT.md): the image holds every file the bundle reads at
// run time, runs the agent against /host, and leaves health checking to the chart's probes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers.ts';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const text = readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = text
  .replace(/\\\n\s*/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

test('Dockerfile: the build stage builds as CI does; the runtime stage gets every file the bundle reads', () => {
  const stages = instructions.filter((i) => i.startsWith('FROM '));
  assert.equal(stages.length, 2, 'multi-stage: build, then runtime');
  assert.ok(
    instructions.includes('RUN npm ci --no-audit --no-fund'),
    'the build stage runs npm ci',
  );
  const copy = instructions.find((i) => i.startsWith('COPY --from=build ') && i.endsWith(' /app/'));
  assert.ok(copy !== undefined);
  const sources = copy.split(/\s+/).slice(2, -1);
  // every file the build writes to dist/ and the agent reads at run time (the CVE table is read
  // beside the bundle: an image without it fails the cve check on every run)
  const built = ['node-auditor.cjs', 'node-auditor.cjs.map', 'kubernetes-cves.json'];
  assert.deepEqual(sources.map((s) => path.basename(s)).sort(), [...built].sort());
  for (const file of built) {
    assert.ok(existsSync(path.join(REPO, 'dist', file)), `npm run build writes dist/${file}`);
  }
});

test('Dockerfile: the runtime stage is the Debian release the build ran on, with only the Node binary of the release the tests run on', () => {
  const [build, runtime] = instructions.filter((i) => i.startsWith('FROM '));
  const node = /^FROM node:(\d+\.\d+\.\d+)-(\w+)-slim AS build$/.exec(build ?? '');
  assert.ok(node, `the build image is pinned to a Node release: ${build}`);
  // exactly the Node the tests and npm scripts run on (the devDependency `node`, as
  // package-lock.json resolves it), and the same Debian release (its glibc)
  const locked = (
    JSON.parse(readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string }>;
    }
  ).packages['node_modules/node']?.version;
  assert.equal(node[1], locked, `package-lock.json's node is ${locked}`);
  assert.equal(runtime, `FROM debian:${node[2]}-slim`);
  // node on the PATH, from the build stage; nothing else of the node image (npm, yarn, headers)
  assert.ok(instructions.includes('COPY --from=build /usr/local/bin/node /usr/local/bin/node'));
  const fromBuild = instructions.filter((i) => i.startsWith('COPY --from=build '));
  assert.equal(fromBuild.length, 2, fromBuild.join('\n'));
  // USER node exists in a Debian image only if the Dockerfile creates it
  assert.ok(instructions.some((i) => /useradd --uid 1000 .*\bnode$/.test(i)));
});

test('Dockerfile: runs the agent on /host, as a user, labelled, with no HEALTHCHECK', () => {
  assert.ok(instructions.includes('ENTRYPOINT ["node", "/app/node-auditor.cjs"]'));
  assert.ok(instructions.includes('CMD ["run", "--host-root", "/host"]'));
  assert.ok(
    instructions.some((i) => /^USER (?!root\b|0\b)\S+/.test(i)),
    'a non-root USER',
  );
  assert.ok(!instructions.some((i) => i.startsWith('HEALTHCHECK')), "the chart's probes do that");
  for (const label of ['title', 'description', 'version', 'licenses', 'source']) {
    assert.match(text, new RegExp(`org\\.opencontainers\\.image\\.${label}=`), label);
  }
  // the logs check runs journalctl on the host's journal
  assert.match(text, /apt-get install -y --no-install-recommends systemd/);
});

interface LintReport {
  totalIssues: number;
  files: { issues: { line: string; title: string }[] }[];
}

function lint(file: string): LintReport {
  const bin = path.join(REPO, 'node_modules', '.bin', 'dockerfilelint');
  const run = spawnSync(bin, ['-o', 'json', file], { encoding: 'utf8' });
  return JSON.parse(run.stdout) as LintReport;
}

test('Dockerfile: dockerfilelint finds nothing (and does find the usual mistakes)', async (t) => {
  const ours = lint(path.join(REPO, 'Dockerfile'));
  assert.deepEqual(ours.files[0]?.issues, [], JSON.stringify(ours.files[0]?.issues));
  // the linter really looks: a Dockerfile with two classic mistakes is reported
  const bad = path.join(await tempDir(t), 'Dockerfile');
  writeFileSync(bad, 'FROM node:latest\nRUN apt-get install curl\n');
  const titles = lint(bad).files[0]?.issues.map((i) => i.title) ?? [];
  assert.ok(titles.includes('Base Image Latest Tag'), titles.join(', '));
  assert.ok(titles.includes('Missing parameter for `apt-get`'), titles.join(', '));
});

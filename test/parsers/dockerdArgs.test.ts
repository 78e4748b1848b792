import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDockerdArgs } from '../../agent/parsers/dockerdArgs.ts';

test("reads the seed's DOCKER_OPTS as systemd passes them to dockerd", () => {
  assert.deepEqual(
    parseDockerdArgs([
      '/usr/bin/dockerd',
      '--storage-driver=overlay2',
      '--insecure-registry',
      'docker-registry:5000',
      '--insecure-registry',
      'oreo:5000',
    ]),
    {
      insecureRegistries: ['docker-registry:5000', 'oreo:5000'],
      hosts: [],
      flags: ['storage-driver', 'insecure-registry'],
    },
  );
});

test('-H in all its forms, --host, --config-file, and boolean flags', () => {
  assert.deepEqual(
    parseDockerdArgs([
      'dockerd',
      '-H',
      'fd://',
      '-H=tcp://0.0.0.0:2375',
      '-Htcp://127.0.0.1:2376',
      '--host=unix:///run/docker.sock',
      '--config-file',
      '/opt/docker/daemon.json',
      '--tls',
      '--tlsverify=false',
    ]),
    {
      insecureRegistries: [],
      hosts: ['fd://', 'tcp://0.0.0.0:2375', 'tcp://127.0.0.1:2376', 'unix:///run/docker.sock'],
      configFile: '/opt/docker/daemon.json',
      tls: true,
      tlsverify: false,
      flags: ['host', 'config-file', 'tls', 'tlsverify'],
    },
  );
});

test('other flags are only named; "--" ends the flags; a value that is not a Go bool is ignored', () => {
  assert.deepEqual(
    parseDockerdArgs(['dockerd', '--log-level', 'debug', '--tlsverify=yes', '--', '-H', 'x']),
    { insecureRegistries: [], hosts: [], flags: ['log-level', 'tlsverify'] },
  );
});

test("one-letter flags by their long names, grouped booleans, and a newer dockerd's unknown flag", () => {
  assert.deepEqual(
    parseDockerdArgs([
      'dockerd',
      '-Dl',
      'debug',
      '-s',
      'overlay2',
      '--debug',
      '--some-future-flag',
      'value',
      '--future-bool',
      '-G=docker',
      '--insecure-registry',
      '-not-a-flag-but-its-value',
    ]),
    {
      insecureRegistries: ['-not-a-flag-but-its-value'],
      hosts: [],
      flags: [
        'debug',
        'log-level',
        'storage-driver',
        'some-future-flag',
        'future-bool',
        'group',
        'insecure-registry',
      ],
    },
  );
});

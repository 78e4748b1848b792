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
    { insecureRegistries: ['docker-registry:5000', 'oreo:5000'], hosts: [] },
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
    },
  );
});

test('other flags are skipped; "--" ends the flags; a value that is not a Go bool is ignored', () => {
  assert.deepEqual(
    parseDockerdArgs(['dockerd', '--log-level', 'debug', '--tlsverify=yes', '--', '-H', 'x']),
    { insecureRegistries: [], hosts: [] },
  );
});

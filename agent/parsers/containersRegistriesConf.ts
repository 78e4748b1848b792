// containers-registries.conf(5), read by CRI-O and podman (containers/image): registries whose
// pulls are `insecure` ("allows unencrypted HTTP as well as TLS connections with untrusted
// certificates"). Version 2 has [[registry]] tables (prefix, location, insecure) with
// [[registry.mirror]] tables of their own; version 1 lists hosts in
// [registries.insecure] registries = [...]. Pure: parsed TOML in, settings out.
import type { InsecureRegistrySetting } from './registryHost.ts';
import { isLoopbackHost } from './registryHost.ts';
import type { TomlDocument } from './tomlSubset.ts';
import { isTomlTable, tomlGet } from './tomlSubset.ts';

export function registriesConfInsecure(doc: TomlDocument): InsecureRegistrySetting[] {
  const found: InsecureRegistrySetting[] = [];
  const registries = doc.root.registry;
  if (Array.isArray(registries)) {
    registries.forEach((registry, i) => {
      if (!isTomlTable(registry)) return;
      const named = registryName(registry.location, registry.prefix);
      const name = named?.value;
      if (named !== undefined && registry.insecure === true) {
        found.push(setting(doc, ['registry', String(i), 'insecure'], named, '[[registry]]'));
      }
      const mirrors = registry.mirror;
      if (!Array.isArray(mirrors)) return;
      mirrors.forEach((mirror, j) => {
        if (!isTomlTable(mirror) || mirror.insecure !== true) return;
        const location = registryName(mirror.location, undefined);
        if (location === undefined) return;
        found.push({
          ...setting(
            doc,
            ['registry', String(i), 'mirror', String(j), 'insecure'],
            location,
            '[[registry.mirror]]',
          ),
          ...(name === undefined ? {} : { note: `mirror of ${name}` }),
        });
      });
    });
  }
  const v1 = tomlGet(doc.root, ['registries', 'insecure', 'registries']);
  if (Array.isArray(v1)) {
    const line =
      doc.entries.find((e) => e.path.join('.') === 'registries.insecure.registries')?.line ?? 0;
    for (const entry of v1) {
      if (typeof entry !== 'string' || entry === '') continue;
      found.push({
        host: entry,
        kind: 'insecure',
        line,
        setting: `[registries.insecure] registries = [${JSON.stringify(entry)}]`,
        loopback: isLoopbackHost(hostPart(entry)),
      });
    }
  }
  return found;
}

function setting(
  doc: TomlDocument,
  path: string[],
  name: { key: string; value: string },
  table: string,
): InsecureRegistrySetting {
  const key = path.join('\0');
  return {
    host: name.value,
    kind: 'insecure',
    line: doc.entries.find((e) => e.path.join('\0') === key)?.line ?? 0,
    setting: `${table} ${name.key} = ${JSON.stringify(name.value)} insecure = true`,
    loopback: isLoopbackHost(hostPart(name.value)),
  };
}

/** location, else prefix: the registry (and optional namespace path) pulls go to. */
function registryName(
  location: unknown,
  prefix: unknown,
): { key: string; value: string } | undefined {
  if (typeof location === 'string' && location !== '') return { key: 'location', value: location };
  if (typeof prefix === 'string' && prefix !== '') return { key: 'prefix', value: prefix };
  return undefined;
}

/** "host[:port]" of "host[:port]/namespace/repo". */
function hostPart(name: string): string {
  return name.split('/')[0] ?? name;
}

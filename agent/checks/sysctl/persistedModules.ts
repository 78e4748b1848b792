// Whether a kernel module is loaded at boot: listed in a modules-load.d file (as
// systemd-modules-load reads them), in Debian's /etc/modules, or built into the kernel. The
// net.bridge.* sysctls exist only while br_netfilter is loaded, so their values survive a
// reboot only if the module comes back.
import type { HostRoot } from '../../host/hostRoot.ts';

/** systemd-modules-load's directories, in precedence order (a name in /etc hides the same name later). */
export const MODULES_LOAD_DIRS = [
  '/etc/modules-load.d',
  '/run/modules-load.d',
  '/usr/local/lib/modules-load.d',
  '/usr/lib/modules-load.d',
  '/lib/modules-load.d',
] as const;
/** Debian's own list, loaded at boot by kmod's init script (and by systemd through a link). */
const ETC_MODULES = '/etc/modules';
/** The name Debian gives that link in /etc/modules-load.d. */
const DEBIAN_MODULES_LINK = 'modules.conf';

/** "-" and "_" are the same in module names. */
const canonical = (module: string) => module.replace(/-/g, '_');

function lists(text: string, module: string): boolean {
  const wanted = canonical(module);
  return text.split('\n').some((line) => {
    const name = line.trim();
    // "#" and ";" start comments; /etc/modules lines may carry arguments after the name
    return (
      name !== '' &&
      !name.startsWith('#') &&
      !name.startsWith(';') &&
      canonical(name.split(/\s+/)[0] ?? '') === wanted
    );
  });
}

/**
 * The host file that loads the module at boot, if any: the first modules-load.d file (by
 * systemd-modules-load's rules: the first directory holding a name wins, a link to /dev/null
 * masks it) or /etc/modules that lists it. `except` leaves one file out (the agent's own, when
 * it asks whether another already does the job). Unreadable files count as not listing it.
 */
export async function bootModuleSource(
  host: HostRoot,
  module: string,
  except?: string,
): Promise<string | undefined> {
  const seen = new Set<string>(except === undefined ? [] : [baseName(except)]);
  for (const dir of MODULES_LOAD_DIRS) {
    // a directory that cannot be read counts as listing nothing (the finding names the places)
    for (const entry of (await host.listDir(dir).catch(() => null)) ?? []) {
      if (!entry.name.endsWith('.conf') || entry.isDirectory || seen.has(entry.name)) continue;
      seen.add(entry.name);
      const file = `${dir}/${entry.name}`;
      const resolved = await host.resolve(file).catch(() => undefined);
      if (resolved === undefined || resolved === '/dev/null') continue;
      const text = await host.readText(resolved, { alreadyResolved: true }).catch(() => null);
      if (text !== null && lists(text, module)) return file;
    }
  }
  // On a systemd host /etc/modules comes in as modules-load.d/modules.conf (a link to it), read
  // above, or masked there with /dev/null: then it is not read again on its own.
  if (seen.has(DEBIAN_MODULES_LINK)) return undefined;
  const text = await host.readText(ETC_MODULES).catch(() => null);
  return text !== null && lists(text, module) ? ETC_MODULES : undefined;
}

/**
 * Whether the running kernel has the module built in, for a module whose sysctls exist (it is
 * in the kernel one way or the other): modules.builtin of the running release says so; without
 * that file (images that ship no modules tree), sysfs does: a loaded module has
 * /sys/module/<name>/initstate, a built-in one does not. Then nothing needs to load it.
 */
export async function isBuiltinModule(host: HostRoot, module: string): Promise<boolean> {
  const listed = await builtinListed(host, module);
  if (listed !== undefined) return listed;
  const sysModule = '/sys/module';
  if (!(await host.exists(sysModule).catch(() => false))) return false;
  return !(await host.exists(`${sysModule}/${canonical(module)}/initstate`).catch(() => true));
}

/** What modules.builtin of the running release says, or undefined without one. */
async function builtinListed(host: HostRoot, module: string): Promise<boolean | undefined> {
  const release = (
    await host.readText('/proc/sys/kernel/osrelease', { resolveLinks: false }).catch(() => null)
  )?.trim();
  if (release === undefined || release === '' || release.includes('/')) return undefined;
  const wanted = `${canonical(module)}.ko`;
  for (const dir of ['/lib/modules', '/usr/lib/modules']) {
    const text = await host.readText(`${dir}/${release}/modules.builtin`).catch(() => null);
    if (text === null) continue;
    return text.split('\n').some((line) => canonical(baseName(line.trim())) === wanted);
  }
  return undefined;
}

function baseName(file: string): string {
  return file.slice(file.lastIndexOf('/') + 1);
}

// Credentials and TLS for the Kubernetes API found by kubeDiscovery.ts.
//
// From @kubernetes/client-node we take the parts that carry knowledge (kubeconfig parsing,
// exec-plugin authentication) and leave the generated API client: importing
// it costs about 80 MiB of RSS and 0.4 s on every node (bench/RESULTS.md). Requests go through
// node:https (kubeApi.ts).
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import type { Logger } from 'pino';
import * as fs from '../host/asyncFs.ts';
import path from 'node:path';
import { newClusters, newContexts, newUsers } from '@kubernetes/client-node/dist/config_types.js';
import type { Cluster, User } from '@kubernetes/client-node/dist/config_types.js';
import { ExecAuth } from '@kubernetes/client-node/dist/exec_auth.js';
import { AuditorError, ErrorCode, describeError, errnoCode, fileErrorReason } from '../errors.ts';
import { jsYaml } from '../parsers/yaml.ts';
import type { KubeSource } from './kubeDiscovery.ts';
import { TokenFile } from './tokenFile.ts';
import type { TokenFileOptions } from './tokenFile.ts';

export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  servername?: string;
}

export interface KubeAccess {
  server: URL;
  /** "in-cluster" or the kubeconfig path, for log lines. */
  source: string;
  /** The namespace of the ServiceAccount or of the kubeconfig context, if known. */
  namespace?: string;
  /**
   * Why the kubeconfig's credentials cannot work here (an auth-provider, an exec plugin that
   * needs a terminal), said once when the API is opened: otherwise each call would just be
   * refused, or wait for the plugin, with no word of why.
   */
  unusable?: string;
  tls: TlsMaterial;
  /**
   * Add credentials to a request: the Authorization header, or a client certificate an exec
   * plugin returned. Re-reads a token file (the ServiceAccount's, a kubeconfig's `token-file`)
   * every 60 s, as client-go, so a rotated token is used.
   */
  authenticate(request: {
    headers: Record<string, string>;
    cert?: string;
    key?: string;
  }): Promise<void>;
}

export interface KubeAccessOptions {
  credentialTimeoutMs?: number;
  /** Monotonic milliseconds, for the age of a token read from a file (tests may drive it). */
  monotonic?: () => number;
  /** Where a token file that cannot be read again is said (kube.token.unreadable). */
  log?: Logger;
}

/** Open what discovery found. Throws AuditorError (a configuration error) for a bad kubeconfig. */
export async function openKubeAccess(
  source: KubeSource,
  options: KubeAccessOptions = {},
): Promise<KubeAccess> {
  return source.kind === 'kubeconfig'
    ? fromKubeconfig(source.file, options)
    : fromServiceAccount(source, options);
}

async function fromServiceAccount(
  { host, port, dir }: { host: string; port: string; dir: string },
  options: KubeAccessOptions,
): Promise<KubeAccess> {
  const token = new TokenFile(path.join(dir, 'token'), tokenFileOptions(options));
  const ca = await readOptional(path.join(dir, 'ca.crt'));
  const namespace = (await readOptional(path.join(dir, 'namespace')))?.trim();
  return {
    server: new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`),
    source: 'in-cluster',
    ...(namespace === undefined || namespace === '' ? {} : { namespace }),
    tls: { ...(ca === undefined ? {} : { ca }), rejectUnauthorized: true },
    async authenticate(request) {
      request.headers.Authorization = `Bearer ${await token.get()}`;
    },
  };
}

async function fromKubeconfig(file: string, options: KubeAccessOptions): Promise<KubeAccess> {
  const credentialTimeoutMs = options.credentialTimeoutMs ?? 10_000;
  const fail = (why: string, cause?: unknown): AuditorError =>
    new AuditorError(ErrorCode.ConfigInvalid, `kubeconfig ${file}: ${why}`, { cause });
  let parsed: unknown;
  try {
    // A regular file, as the config file: a FIFO or a device would hold start-up forever.
    const text = await fs.readRegularFile(file);
    parsed = (await jsYaml()).load(text);
  } catch (error) {
    throw fail(
      errnoCode(error) === undefined
        ? (describeError(error).split('\n')[0] ?? 'unreadable')
        : fileErrorReason(error),
      error,
    );
  }
  if (typeof parsed !== 'object' || parsed === null)
    throw fail('not a kubeconfig (no mapping at the top)');
  const doc = parsed as Record<string, unknown>;
  let clusters: Cluster[];
  let users: User[];
  try {
    clusters = newClusters(doc.clusters);
    // without token-file: client-node would read it once, here, relative to the current
    // directory and untrimmed; it is read below as kubectl reads it
    users = newUsers(withoutTokenFiles(doc.users));
  } catch (error) {
    throw fail(describeError(error), error);
  }
  const contexts = newContexts(doc.contexts);
  const current = doc['current-context'];
  const context = contexts.find((c) => c.name === current);
  if (typeof current !== 'string' || context === undefined)
    throw fail(`current-context ${JSON.stringify(current)} is not one of its contexts`);
  const cluster = clusters.find((c) => c.name === context.cluster);
  if (cluster === undefined)
    throw fail(`context ${context.name} names cluster ${context.cluster}, which is not defined`);
  const user: User = users.find((u) => u.name === context.user) ?? { name: context.user };
  // Relative file paths in a kubeconfig are relative to the kubeconfig itself (as kubectl).
  const dir = path.dirname(path.resolve(file));
  const material = async (data: unknown, name: unknown): Promise<string | undefined> => {
    const inline = text(data);
    if (inline !== undefined) return Buffer.from(inline, 'base64').toString('utf8');
    if (text(name) === undefined) return undefined;
    try {
      return await fs.readRegularFile(path.resolve(dir, String(name)));
    } catch (error) {
      throw fail(`cannot read ${String(name)}: ${fileErrorReason(error)}`, error);
    }
  };
  const ca = await material(cluster.caData, cluster.caFile);
  const cert = await material(user.certData, user.certFile);
  const key = await material(user.keyData, user.keyFile);
  // A token file is read now, so that one that cannot be read is a configuration error, and
  // again every minute after. With a `token` beside it, as client-go (clientcmd, then
  // transport.NewBearerAuthWithRefreshRoundTripper): the file's token whenever the file can be
  // read, the `token` while it never could, and no error up front.
  const tokenFileName = text(tokenFileOf(doc.users, user.name));
  const inlineToken = text(user.token)?.trim();
  let tokenFile: TokenFile | undefined;
  if (tokenFileName !== undefined) {
    tokenFile = new TokenFile(path.resolve(dir, tokenFileName), {
      ...tokenFileOptions(options),
      ...(inlineToken === undefined ? {} : { fallback: inlineToken }),
    });
    try {
      if (inlineToken === undefined) await tokenFile.get();
    } catch (error) {
      throw fail(describeError(error), error);
    }
  }
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch (error) {
    throw fail(
      `cluster ${cluster.name} has an invalid server ${JSON.stringify(cluster.server)}`,
      error,
    );
  }
  const exec = boundedExec(credentialTimeoutMs);
  const usesExec = exec.isAuthProvider(user);
  // kubectl runs a relative exec command (./get-token) from the kubeconfig's directory
  const execSpec = user.exec as { command?: unknown } | null | undefined;
  const command = text(execSpec?.command);
  const execUser: User =
    usesExec && command !== undefined && command.includes('/') && !path.isAbsolute(command)
      ? { ...user, exec: { ...execSpec, command: path.resolve(dir, command) } }
      : user;
  const unusable = unusableCredentials(user, usesExec, {
    other:
      text(user.token) !== undefined ||
      tokenFile !== undefined ||
      cert !== undefined ||
      (text(user.username) !== undefined && text(user.password) !== undefined),
  });
  // one plugin run at a time: the first one's credential is cached for the others
  let credentials: Promise<unknown> = Promise.resolve();
  return {
    server,
    source: file,
    ...(unusable === undefined ? {} : { unusable }),
    ...(context.namespace === undefined ? {} : { namespace: context.namespace }),
    tls: {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      rejectUnauthorized: !cluster.skipTLSVerify,
      ...(cluster.tlsServerName === undefined ? {} : { servername: cluster.tlsServerName }),
    },
    async authenticate(request) {
      if (usesExec) {
        // runs the plugin (e.g. aws eks get-token) and caches its credential until it expires
        const run = credentials.then(() =>
          withDeadline(
            exec.applyAuthentication(execUser, request),
            credentialTimeoutMs,
            'the credential plugin',
          ),
        );
        credentials = run.catch(() => undefined);
        await run;
      } else if (tokenFile !== undefined) {
        request.headers.Authorization = `Bearer ${await tokenFile.get()}`;
      } else if (inlineToken !== undefined) {
        request.headers.Authorization = `Bearer ${inlineToken}`;
      } else if (text(user.username) !== undefined && text(user.password) !== undefined) {
        request.headers.Authorization = `Basic ${Buffer.from(`${text(user.username) ?? ''}:${text(user.password) ?? ''}`).toString('base64')}`;
      }
    },
  };
}

/**
 * What the agent cannot do with this user's credentials: an auth-provider other than exec
 * (gcp, azure, oidc: client-go dropped them; client-node's would need the whole client), or an
 * exec plugin that insists on a terminal. Names only, never the provider's config (tokens).
 */
function unusableCredentials(
  user: User,
  usesExec: boolean,
  { other }: { other: boolean },
): string | undefined {
  const provider = (user.authProvider as { name?: unknown } | null | undefined)?.name;
  if (!usesExec && user.authProvider !== null && user.authProvider !== undefined) {
    return `user ${user.name} authenticates with auth-provider ${JSON.stringify(text(provider) ?? '')}, which node-auditor does not support; ${other ? 'its other credentials are used' : 'requests go without credentials and will be refused'}. Use a token, token-file, client certificate or exec plugin`;
  }
  const execSpec = user.exec as { command?: unknown; interactiveMode?: unknown } | null | undefined;
  if (usesExec && execSpec?.interactiveMode === 'Always') {
    return `user ${user.name}'s exec plugin ${JSON.stringify(text(execSpec.command) ?? '')} needs a terminal (interactiveMode: Always), which the agent does not have: each call fails once the plugin does (or after the request timeout). Use interactiveMode Never or IfAvailable`;
  }
  return undefined;
}

/**
 * client-node's ExecAuth, with a plugin that hangs killed at the deadline (it would otherwise
 * hold every API call, and shutdown, forever).
 */
function boundedExec(timeoutMs: number): ExecAuth {
  const exec = new ExecAuth();
  const spawnPlugin = (
    command: string,
    args: readonly string[],
    opts: SpawnOptions,
  ): ChildProcess => {
    const child = spawn(command, args, opts);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    timer.unref();
    child.once('exit', () => {
      clearTimeout(timer);
    });
    return child;
  };
  (exec as unknown as { execFn: typeof spawnPlugin }).execFn = spawnPlugin;
  return exec;
}

function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} did not answer within ${ms}ms`));
    }, ms);
  });
  return Promise.race([work, deadline]).finally(() => {
    clearTimeout(timer);
  });
}

function tokenFileOptions(options: KubeAccessOptions): TokenFileOptions {
  return {
    ...(options.monotonic === undefined ? {} : { monotonic: options.monotonic }),
    ...(options.log === undefined ? {} : { log: options.log }),
  };
}

/** The kubeconfig's users with no `token-file` (kept by tokenFileOf). */
function withoutTokenFiles(users: unknown): unknown {
  if (!Array.isArray(users)) return users;
  return users.map((entry: unknown) => {
    const user = (entry as { user?: unknown } | null)?.user;
    if (typeof user !== 'object' || user === null || !('token-file' in user)) return entry;
    const rest: Record<string, unknown> = { ...user };
    delete rest['token-file'];
    return { ...(entry as Record<string, unknown>), user: rest };
  });
}

/** The `token-file` of the named user, as written in the kubeconfig. */
function tokenFileOf(users: unknown, name: string): unknown {
  if (!Array.isArray(users)) return undefined;
  const entry = users.find((u: unknown) => (u as { name?: unknown } | null)?.name === name) as
    { user?: Record<string, unknown> | null } | undefined;
  return entry?.user?.['token-file'];
}

/** client-node types these as strings, but leaves null where the kubeconfig has nothing. */
function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readRegularFile(file);
  } catch {
    return undefined;
  }
}

// One catalogue of error codes (as fastify's lib/errors.js): every error the agent raises on
// purpose carries one of these, so logs, tests and exit codes can rely on identity, not text.

export const ErrorCode = {
  /** Bad command line: unknown flag or command, missing argument. Exit 2. */
  Usage: 'E_USAGE',
  /** Configuration that does not validate (file, env or flag). Exit 2. */
  ConfigInvalid: 'E_CONFIG_INVALID',
  /** Configuration file that cannot be read or parsed. Exit 2. */
  ConfigUnreadable: 'E_CONFIG_UNREADABLE',
  /** A file given on the command line (scan-logs FILE) cannot be read. Exit 2. */
  InputUnreadable: 'E_INPUT_UNREADABLE',
  /** A host file exists but cannot be read (permissions, not a regular file, too large). */
  HostRead: 'E_HOST_READ',
  /** A host file or sysctl could not be written (remediation). */
  HostWrite: 'E_HOST_WRITE',
  /** A D-Bus call to systemd failed (remediation). */
  Dbus: 'E_DBUS',
  /** A check did not finish within its timeout. */
  CheckTimeout: 'E_CHECK_TIMEOUT',
  /** A check's previous run never finished; a new one is not started on top of it. */
  CheckStillRunning: 'E_CHECK_STILL_RUNNING',
  /** A check threw. */
  CheckFailed: 'E_CHECK_FAILED',
  /** The HTTP server could not listen. */
  Listen: 'E_LISTEN',
  /** The Kubernetes API answered with an error, or could not be reached. */
  KubeApi: 'E_KUBE_API',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class AuditorError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditorError';
    this.code = code;
  }
}

/** Errors that mean "the operator gave us something wrong": the CLI exits 2 on these. */
export function isUsageOrConfigError(error: unknown): error is AuditorError {
  return (
    error instanceof AuditorError &&
    (error.code === ErrorCode.Usage ||
      error.code === ErrorCode.ConfigInvalid ||
      error.code === ErrorCode.ConfigUnreadable ||
      error.code === ErrorCode.InputUnreadable)
  );
}

/** The errno code of a Node system error, if any (ENOENT, EACCES, ...). */
/**
 * A failed Kubernetes API call (KubeApiError), told by its code: importing kubeApi.ts to test
 * instanceof would load node:https (TLS, OpenSSL) at start-up on every node, cluster or not.
 */
export function isKubeApiError(error: unknown): error is AuditorError {
  return error instanceof AuditorError && error.code === ErrorCode.KubeApi;
}

export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** A short, human message for any thrown value (never a stack trace). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Why a file could not be read, in words ("no such file"), for messages that name the file. */
export function fileErrorReason(error: unknown): string {
  const code = errnoCode(error);
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'E_NOT_REGULAR' || code === 'E_PIPE') return describeError(error);
  return code ?? describeError(error).split('\n')[0] ?? 'unreadable';
}

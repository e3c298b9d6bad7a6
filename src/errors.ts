/**
 * Every failure rookery reports is a RookeryError: a stable `code`, a one-line message saying what failed
 * and where, an optional hint saying what to do, and the process exit code the CLI uses for it.
 */

/** Exit codes of the `rookery` command; documented in the README. */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2, // bad flags or bad config: fix the input
  notConverged: 3, // `agent --once`: an app is not on the manifest's current tag
  refused: 4, // a release failed verification, or the server refused a request
  unavailable: 5, // a server or peer could not be reached: retry later
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export interface RookeryErrorOptions {
  cause?: unknown
  hint?: string
  exitCode?: ExitCodeValue
}

export class RookeryError extends Error {
  readonly code: string
  readonly hint: string | undefined
  readonly exitCode: ExitCodeValue

  constructor(code: string, message: string, options: RookeryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.hint = options.hint
    this.exitCode = options.exitCode ?? ExitCode.unexpected
  }
}

/** Bad command-line usage. */
export class UsageError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('ROOKERY_USAGE', message, { exitCode: ExitCode.usage, ...options })
  }
}

/** A config file that cannot be used; the message names the file, line and key. */
export class ConfigError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('ROOKERY_CONFIG', message, { exitCode: ExitCode.usage, ...options })
  }
}

/** A release artifact that failed a check (checksum, infohash, unsafe archive entry). Never retried as-is. */
export class VerifyError extends RookeryError {
  constructor(code: string, message: string, options: RookeryErrorOptions = {}) {
    super(code, message, { exitCode: ExitCode.refused, ...options })
  }
}

/** A server or swarm that did not answer in time, or answered with a server error: worth retrying later. */
export class UnavailableError extends RookeryError {
  constructor(code: string, message: string, options: RookeryErrorOptions = {}) {
    super(code, message, { exitCode: ExitCode.unavailable, ...options })
  }
}

/** A request the server refused (bad token, conflicting tag, unknown release). */
export class RefusedError extends RookeryError {
  constructor(code: string, message: string, options: RookeryErrorOptions = {}) {
    super(code, message, { exitCode: ExitCode.refused, ...options })
  }
}

/** One line for a log or a terminal: the message, then the cause's message when it adds something. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause = err.cause instanceof Error ? err.cause.message : undefined
  return cause && !err.message.includes(cause) ? `${err.message}: ${cause}` : err.message
}

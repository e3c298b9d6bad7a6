import type { ReleaseEntry } from '../manifest/manifest.ts'
import type { Failure } from './state.ts'

/** What one reconcile does for one app: the decision alone, with no I/O, so it is tested on its own. */
export type Action =
  | { kind: 'none'; reason: string }
  | { kind: 'skip'; reason: string; release: ReleaseEntry }
  | { kind: 'activate'; release: ReleaseEntry }
  | { kind: 'install'; release: ReleaseEntry }

export interface PlanInput {
  /** The manifest's current release for the app, if any. */
  desired: ReleaseEntry | undefined
  /** The tag `current` points at on this host. */
  current: string | null
  installed: ReadonlySet<string>
  /** A tag whose activation (switch + hook) was started and not finished, e.g. the agent died in the hook. */
  activating?: string | undefined
  failures: Readonly<Record<string, Failure>>
  now: Date
}

export function planApp(input: PlanInput): Action {
  const { desired } = input
  if (!desired) return { kind: 'none', reason: 'the manifest has no current release for this app' }
  if (input.current === desired.tag && input.activating !== desired.tag) return { kind: 'none', reason: `already on ${desired.tag}` }
  const failure = input.failures[desired.tag]
  // A failure only counts for the same content: a tag republished elsewhere with other bytes is new.
  if (failure && failure.sha256 === desired.sha256) {
    if (failure.permanent) {
      return { kind: 'skip', release: desired, reason: `${desired.tag} failed before (${failure.code}: ${failure.reason}); not retried` }
    }
    if (failure.retry_after && Date.parse(failure.retry_after) > input.now.getTime()) {
      return { kind: 'skip', release: desired, reason: `${desired.tag} failed ${failure.attempts} time(s); next try after ${failure.retry_after}` }
    }
  }
  if (input.installed.has(desired.tag)) return { kind: 'activate', release: desired }
  return { kind: 'install', release: desired }
}

/** Delay before retrying a transient failure: `baseMs` (15 s) doubling per attempt, at most 10 minutes. */
export function retryDelayMs(attempts: number, baseMs = 15_000): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempts - 1), 600_000)
}

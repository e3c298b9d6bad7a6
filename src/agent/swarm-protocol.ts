import { RookeryError, UnavailableError, VerifyError, type ExitCodeValue } from '../errors.ts'
import type { ExtractLimits, ExtractResult } from '../release/extract.ts'
import type { TrafficStats, WebseedFallback } from '../swarm/download.ts'
import type { SeedOver } from './linger.ts'

/**
 * The messages between the agent and its swarm process (src/agent/swarm.ts, src/agent/swarm-worker.ts),
 * over Node's IPC channel.
 */

/** First message: open the swarm client. */
export interface OpenMessage {
  type: 'open'
  torrentPort: number
  /** Seconds of each peer's rate to keep requested. */
  requestPipelineSeconds: number
}

/** Download a release into `dir`, extract it into `releaseDir` while it arrives, then seed it. */
export interface InstallRequest {
  /** The .torrent file, checked against `infohash` and `size` before anything is downloaded. */
  torrent: Uint8Array
  torrentUrl: string
  infohash: string
  size: number
  sha256: string
  dir: string
  releaseDir: string
  limits: ExtractLimits
  stallTimeoutMs: number
  webseedFallbackMs?: number
  announce?: string[]
  seedWindowMs: number
  app: string
  tag: string
}

export type ToWorker =
  | OpenMessage
  | ({ type: 'install'; id: number } & InstallRequest)
  | { type: 'abort'; id: number }
  | { type: 'close' }

export type FromWorker =
  | { type: 'listening'; port: number }
  | { type: 'open-failed'; error: SentError }
  | { type: 'started'; id: number }
  | { type: 'progress'; id: number; done: number; total: number }
  | { type: 'corrupt-piece'; id: number; piece: number; total: number }
  | { type: 'peer-dropped'; id: number; peer: string; strikes: number }
  | ({ type: 'webseed-fallback'; id: number } & WebseedFallback)
  | { type: 'downloaded'; id: number; traffic: TrafficStats }
  | ({ type: 'extracted'; id: number } & ExtractResult)
  | { type: 'failed'; id: number; error: SentError }
  | ({ type: 'seed-over' } & SeedOver)
  | { type: 'client-error'; message: string }

/** An error as it crosses the channel: enough to rebuild the class the agent's retry logic looks at. */
export interface SentError {
  kind: 'VerifyError' | 'UnavailableError' | 'RookeryError' | 'Error'
  code?: string
  message: string
  hint?: string
  exitCode?: ExitCodeValue
}

export function sendableError(err: unknown): SentError {
  if (err instanceof RookeryError) {
    const kind = err instanceof VerifyError ? 'VerifyError' : err instanceof UnavailableError ? 'UnavailableError' : 'RookeryError'
    return { kind, code: err.code, message: err.message, exitCode: err.exitCode, ...(err.hint ? { hint: err.hint } : {}) }
  }
  return { kind: 'Error', message: err instanceof Error ? err.message : String(err) }
}

export function receivedError(sent: SentError): Error {
  const options = { ...(sent.hint ? { hint: sent.hint } : {}), ...(sent.exitCode !== undefined ? { exitCode: sent.exitCode } : {}) }
  switch (sent.kind) {
    case 'VerifyError':
      return new VerifyError(sent.code!, sent.message, options)
    case 'UnavailableError':
      return new UnavailableError(sent.code!, sent.message, options)
    case 'RookeryError':
      return new RookeryError(sent.code!, sent.message, options)
    default:
      return new Error(sent.message)
  }
}

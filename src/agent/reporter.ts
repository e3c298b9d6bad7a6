import { finished } from 'node:stream/promises'
import { send } from '../http-request.ts'
import type { Logger } from '../log.ts'
import type { ReportInput } from '../status/report.ts'

export type ReportFields = Omit<ReportInput, 'host' | 'groups' | 'app'>

export interface ReporterOptions {
  url: string
  host: string
  groups: readonly string[]
  token?: string | undefined
  timeoutMs: number
  /** Re-send each app's last report this often, so the server can tell a live host from a gone one. */
  heartbeatMs: number
  log: Logger
}

/**
 * Sends phase reports to the server without ever holding up a deploy: each send is fire-and-forget
 * with a short time limit, at most one request per app is in flight (newer reports replace a waiting
 * one), and failures are logged once until a send succeeds again.
 */
export class Reporter {
  readonly #options: ReporterOptions
  readonly #last = new Map<string, ReportFields>()
  readonly #pending = new Map<string, ReportFields>()
  readonly #inFlight = new Set<string>()
  readonly #heartbeat: NodeJS.Timeout
  #failing = false

  constructor(options: ReporterOptions) {
    this.#options = options
    this.#heartbeat = setInterval(() => {
      for (const [app, fields] of this.#last) this.send(app, fields)
    }, options.heartbeatMs)
    this.#heartbeat.unref()
  }

  /** Reports a phase of an app; returns at once. */
  send(app: string, fields: ReportFields): void {
    this.#last.set(app, fields)
    this.#pending.set(app, fields)
    if (!this.#inFlight.has(app)) void this.#flush(app)
  }

  /** Reports only when different from the last report of the app (for the steady state of each poll). */
  sendIfChanged(app: string, fields: ReportFields): void {
    if (JSON.stringify(this.#last.get(app)) !== JSON.stringify(fields)) this.send(app, fields)
  }

  stop(): void {
    clearInterval(this.#heartbeat)
  }

  async #flush(app: string): Promise<void> {
    this.#inFlight.add(app)
    try {
      for (let fields = this.#pending.get(app); fields; fields = this.#pending.get(app)) {
        this.#pending.delete(app)
        await this.#post({ host: this.#options.host, groups: [...this.#options.groups], app, ...fields })
      }
    } finally {
      this.#inFlight.delete(app)
    }
  }

  async #post(report: ReportInput): Promise<void> {
    try {
      const signal = AbortSignal.timeout(this.#options.timeoutMs)
      const res = await send(this.#options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.#options.token ? { authorization: `Bearer ${this.#options.token}` } : {}) },
        body: JSON.stringify(report),
        signal,
      })
      // Drain the body so the connection can be reused; the abort signal bounds this too.
      await finished(res.resume())
      if ((res.statusCode ?? 0) >= 300) throw new Error(`answered ${res.statusCode}`)
      if (this.#failing) this.#options.log.info('status reports reach the server again')
      this.#failing = false
    } catch (err) {
      if (!this.#failing) this.#options.log.warn({ err: (err as Error).message }, `cannot send status reports to ${this.#options.url}; deploys go on`)
      this.#failing = true
    }
  }
}

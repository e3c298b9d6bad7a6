import type { StoredReport } from '../status/aggregate.ts'
import type { Report } from '../status/report.ts'

/**
 * The latest report of each host for each app, in memory. Bounded: hosts silent for `forgetAfterMs`
 * are dropped, and past `maxHosts` the longest-silent host goes first. Reports are soft state: after a
 * server restart, agents' next reports and heartbeats fill it again.
 */
export class ReportStore {
  readonly #byHost = new Map<string, Map<string, StoredReport>>()
  readonly #maxHosts: number
  readonly #forgetAfterMs: number

  constructor(options: { maxHosts: number; forgetAfterMs: number }) {
    this.#maxHosts = options.maxHosts
    this.#forgetAfterMs = options.forgetAfterMs
  }

  get hosts(): number {
    return this.#byHost.size
  }

  accept(report: Report, now = Date.now()): void {
    let apps = this.#byHost.get(report.host)
    // Map order is insertion order: re-inserting keeps the most recently heard host last.
    if (apps) this.#byHost.delete(report.host)
    else apps = new Map()
    apps.set(report.app, { ...report, received_at: now })
    this.#byHost.set(report.host, apps)
    while (this.#byHost.size > this.#maxHosts) this.#byHost.delete(this.#byHost.keys().next().value!)
  }

  /** Every kept report, after dropping hosts silent for too long. */
  *reports(now = Date.now()): Iterable<StoredReport> {
    this.#forget(now)
    for (const apps of this.#byHost.values()) yield* apps.values()
  }

  #forget(now: number): void {
    for (const [host, apps] of this.#byHost) {
      const newest = Math.max(...[...apps.values()].map((r) => r.received_at))
      if (now - newest > this.#forgetAfterMs) this.#byHost.delete(host)
    }
  }
}

import type { ServerResponse } from 'node:http'
import { Counter, Gauge, Registry } from 'prom-client'
import { aggregateStatus } from '../status/aggregate.ts'
import type { RouteContext } from './routes.ts'

/**
 * Prometheus metrics of the server. Counters the request path increments live here; the rest (releases,
 * hosts per state, swarms, seeder bytes) is read from the server's state at scrape time.
 */
export class ServerMetrics {
  readonly registry = new Registry()
  readonly publishes = new Counter({ name: 'rookery_publishes_total', help: 'Releases published (new tags accepted)', labelNames: ['app'], registers: [this.registry] })
  readonly manifestRequests = new Counter({ name: 'rookery_manifest_requests_total', help: 'Manifest requests by answer (agent polls)', labelNames: ['status'], registers: [this.registry] })
  /** The poll answered 304, bound once: it is counted on the server's hottest path. */
  readonly manifestNotModified = this.manifestRequests.labels('304')
  readonly reports = new Counter({ name: 'rookery_reports_total', help: 'Agent status reports accepted', registers: [this.registry] })
  readonly webseedBytes = new Counter({ name: 'rookery_webseed_bytes_total', help: 'Bytes served by the HTTP webseed', registers: [this.registry] })

  /** Bytes the webseed served since start (also in /api/v1/stats). */
  async webseedBytesServed(): Promise<number> {
    return (await this.webseedBytes.get()).values[0]?.value ?? 0
  }

  /** Registers the gauges that read `ctx` when scraped. */
  observe(ctx: RouteContext): void {
    const registers = [this.registry]
    new Gauge({
      name: 'rookery_releases', help: 'Kept releases per app', labelNames: ['app'], registers,
      collect() {
        this.reset()
        for (const [app, entry] of Object.entries(ctx.store.manifest.apps)) this.set({ app }, entry.releases.length)
      },
    })
    new Gauge({
      name: 'rookery_hosts', help: 'Reporting hosts per app and state (activated, in_progress, failed, stale)', labelNames: ['app', 'state'], registers,
      collect() {
        this.reset()
        const status = aggregateStatus(ctx.store.manifest, ctx.reports.reports(), Date.now(), ctx.staleAfterMs)
        for (const [app, s] of Object.entries(status.apps)) for (const [state, n] of Object.entries(s.counts)) this.set({ app, state }, n)
      },
    })
    new Gauge({
      name: 'rookery_tracker_swarms', help: 'Torrents the tracker has peers for', registers,
      collect() {
        this.set(ctx.tracker.swarms().length)
      },
    })
    new Gauge({
      name: 'rookery_tracker_peers', help: 'Peers known to the tracker, by kind', labelNames: ['kind'], registers,
      collect() {
        const swarms = ctx.tracker.swarms()
        this.set({ kind: 'seeder' }, swarms.reduce((n, s) => n + s.complete, 0))
        this.set({ kind: 'leecher' }, swarms.reduce((n, s) => n + s.incomplete, 0))
      },
    })
    new Gauge({
      name: 'rookery_origin_seeder_uploaded_bytes', help: 'Bytes the origin seeder uploaded to peers since start', registers,
      collect() {
        this.set(ctx.seeder.uploaded())
      },
    })
  }
}

/** `GET /metrics` in the Prometheus text format. */
export async function serveMetrics(res: ServerResponse, ctx: RouteContext): Promise<void> {
  const body = await ctx.metrics.registry.metrics()
  res.writeHead(200, { 'Content-Type': ctx.metrics.registry.contentType })
  res.end(body)
}

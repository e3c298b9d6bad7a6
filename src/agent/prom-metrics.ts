import { createServer, type Server } from 'node:http'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { AgentMetrics } from './metrics.ts'

/** The agent's Prometheus metrics, served on `metrics_listen` when configured (off by default). */
export class PromMetrics implements AgentMetrics {
  readonly registry = new Registry()
  readonly lastPoll = new Gauge({ name: 'rookery_agent_last_poll_timestamp_seconds', help: 'When the manifest was last read successfully', registers: [this.registry] })
  readonly current = new Gauge({ name: 'rookery_agent_current_release', help: '1 for the tag current points at, per app', labelNames: ['app', 'tag'], registers: [this.registry] })
  readonly downloadBytes = new Counter({ name: 'rookery_agent_download_bytes_total', help: 'Release bytes received, by source (peer or webseed)', labelNames: ['app', 'source'], registers: [this.registry] })
  readonly uploadBytes = new Counter({ name: 'rookery_agent_upload_bytes_total', help: 'Release bytes sent to other hosts', labelNames: ['app'], registers: [this.registry] })
  readonly hookSeconds = new Histogram({ name: 'rookery_agent_hook_duration_seconds', help: 'post_install run time', labelNames: ['app', 'result'], buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900], registers: [this.registry] })
  readonly failures = new Counter({ name: 'rookery_agent_failures_total', help: 'Failed deploys and polls, by code', labelNames: ['app', 'code'], registers: [this.registry] })

  readonly #currentTags = new Map<string, string>()

  polled(): void {
    this.lastPoll.setToCurrentTime()
  }

  failed(app: string, code: string): void {
    this.failures.inc({ app, code })
  }

  downloaded(app: string, source: 'peer' | 'webseed', bytes: number): void {
    this.downloadBytes.inc({ app, source }, bytes)
  }

  uploaded(app: string, bytes: number): void {
    this.uploadBytes.inc({ app }, bytes)
  }

  hookRan(app: string, result: 'ok' | 'failed', seconds: number): void {
    this.hookSeconds.observe({ app, result }, seconds)
  }

  /** Records which tag is current for an app (one series at 1). */
  setCurrent(app: string, tag: string | null): void {
    const old = this.#currentTags.get(app)
    if (old === tag) return
    if (old !== undefined) this.current.remove({ app, tag: old })
    this.#currentTags.delete(app)
    if (tag) {
      this.current.set({ app, tag }, 1)
      this.#currentTags.set(app, tag)
    }
  }

  /** Serves GET /metrics on host:port. */
  listen(host: string, port: number): Promise<Server> {
    const server = createServer(async (req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404)
        return void res.end()
      }
      res.writeHead(200, { 'Content-Type': this.registry.contentType })
      res.end(await this.registry.metrics())
    })
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve(server))
    })
  }
}

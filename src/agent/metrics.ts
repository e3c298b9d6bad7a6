import type { Server } from 'node:http'

/**
 * What the agent counts for Prometheus. Metrics are off by default (`metrics_listen`), and prom-client
 * costs a few MB of RSS once loaded, so the agent records into `noMetrics` unless they are served; then
 * `serveMetrics` loads the prom-client implementation (prom-metrics.ts).
 */
export interface AgentMetrics {
  /** The manifest was read. */
  polled(): void
  /** A deploy or a poll failed (app '' for a poll). */
  failed(app: string, code: string): void
  /** The tag current points at for an app (null: none). */
  setCurrent(app: string, tag: string | null): void
  downloaded(app: string, source: 'peer' | 'webseed', bytes: number): void
  uploaded(app: string, bytes: number): void
  hookRan(app: string, result: 'ok' | 'failed', seconds: number): void
}

export const noMetrics: AgentMetrics = {
  polled() {},
  failed() {},
  setCurrent() {},
  downloaded() {},
  uploaded() {},
  hookRan() {},
}

/** Serves GET /metrics on host:port with the prom-client implementation. */
export async function serveMetrics(host: string, port: number): Promise<{ metrics: AgentMetrics; server: Server }> {
  const { PromMetrics } = await import('./prom-metrics.ts')
  const metrics = new PromMetrics()
  return { metrics, server: await metrics.listen(host, port) }
}

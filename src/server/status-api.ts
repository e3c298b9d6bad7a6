import type { IncomingMessage, ServerResponse } from 'node:http'
import { aggregateStatus } from '../status/aggregate.ts'
import { MAX_REPORT_BYTES, reportSchema } from '../status/report.ts'
import { isAuthorized } from './auth.ts'
import { HttpError, readSmallBody, sendJson } from './http-util.ts'
import type { ReportStore } from './reports.ts'
import type { ReleaseStore } from './store.ts'
import type { ServerMetrics } from './metrics.ts'

export interface StatusContext {
  store: ReleaseStore
  reports: ReportStore
  /** When set, reports need one of these tokens. */
  agentTokens: readonly string[]
  staleAfterMs: number
  metrics: ServerMetrics
}

/** `POST /api/v1/reports`: an agent's phase report. */
export async function handleReport(req: IncomingMessage, res: ServerResponse, ctx: StatusContext): Promise<void> {
  if (ctx.agentTokens.length > 0 && !isAuthorized(req, ctx.agentTokens)) {
    throw new HttpError(401, 'ROOKERY_UNAUTHORIZED', 'reports need an agent token (Authorization: Bearer ...)')
  }
  const body = await readSmallBody(req, MAX_REPORT_BYTES)
  let data: unknown
  try {
    data = JSON.parse(body.toString('utf8'))
  } catch {
    throw new HttpError(400, 'ROOKERY_BAD_REQUEST', 'a report must be JSON')
  }
  const parsed = reportSchema.safeParse(data)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new HttpError(400, 'ROOKERY_BAD_REQUEST', `bad report: ${issue?.path.join('.')}: ${issue?.message}`)
  }
  ctx.reports.accept(parsed.data)
  ctx.metrics.reports.inc()
  res.writeHead(204)
  res.end()
}

/** `GET /api/v1/status[?app=web]`: where each app's rollout stands. */
export function handleStatus(res: ServerResponse, ctx: StatusContext, app: string | null): void {
  sendJson(res, 200, aggregateStatus(ctx.store.manifest, ctx.reports.reports(), Date.now(), ctx.staleAfterMs, app ?? undefined))
}

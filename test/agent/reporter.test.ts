import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { Writable } from 'node:stream'
import { after, test } from 'node:test'
import { pino } from 'pino'
import { Reporter } from '../../src/agent/reporter.ts'

const servers: Server[] = []
after(() => {
  for (const s of servers) {
    s.closeAllConnections()
    s.close()
  }
})

async function serve(handler: (req: IncomingMessage, body: string, answer: (status: number) => void) => void): Promise<string> {
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => handler(req, body, (status) => res.writeHead(status).end()))
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v1/reports`
}

function capture() {
  const lines: Array<Record<string, unknown>> = []
  const log = pino({ level: 'info' }, new Writable({ write: (chunk, _e, cb) => (lines.push(JSON.parse(String(chunk))), cb()) }))
  return { log, lines }
}

test('send returns at once and a hanging server never holds anything up; one warning, not one per report', async () => {
  const url = await serve(() => {}) // never answers
  const { log, lines } = capture()
  const reporter = new Reporter({ url, host: 'h', groups: [], timeoutMs: 300, heartbeatMs: 60_000, log })
  const started = performance.now()
  for (let i = 0; i < 5; i++) reporter.send('web', { tag: 'v1', current: null, phase: 'downloading', progress: { done: i, total: 5 } })
  assert.ok(performance.now() - started < 50, 'send waited for the server')
  await new Promise((r) => setTimeout(r, 1200))
  reporter.stop()
  assert.equal(lines.filter((l) => String(l.msg).startsWith('cannot send status reports')).length, 1)
})

test('while a report is in flight, newer ones replace the waiting one (only the latest is sent)', async () => {
  const received: Array<Record<string, unknown>> = []
  const url = await serve((req, body, answer) => {
    received.push({ ...JSON.parse(body), auth: req.headers.authorization })
    setTimeout(() => answer(204), 200)
  })
  const reporter = new Reporter({ url, host: 'h1', groups: ['canary'], token: 'tok', timeoutMs: 2000, heartbeatMs: 60_000, log: capture().log })
  for (const phase of ['downloading', 'verified', 'extracted', 'activated'] as const) reporter.send('web', { tag: 'v2', current: 'v1', phase })
  await new Promise((r) => setTimeout(r, 800))
  reporter.stop()
  assert.deepEqual(received.map((r) => r.phase), ['downloading', 'activated'])
  assert.deepEqual(received[1], { host: 'h1', groups: ['canary'], app: 'web', tag: 'v2', current: 'v1', phase: 'activated', auth: 'Bearer tok' })
})

test('heartbeats repeat the last report; sendIfChanged skips an identical one', async () => {
  const received: string[] = []
  const url = await serve((_req, body, answer) => {
    received.push(JSON.parse(body).phase)
    answer(204)
  })
  const reporter = new Reporter({ url, host: 'h', groups: [], timeoutMs: 1000, heartbeatMs: 250, log: capture().log })
  reporter.sendIfChanged('web', { tag: 'v1', current: 'v1', phase: 'activated' })
  reporter.sendIfChanged('web', { tag: 'v1', current: 'v1', phase: 'activated' })
  await new Promise((r) => setTimeout(r, 150))
  assert.deepEqual(received, ['activated'])
  await new Promise((r) => setTimeout(r, 600))
  reporter.stop()
  assert.ok(received.length >= 3, `${received.length} reports: no heartbeat`)
})

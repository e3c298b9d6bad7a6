import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Daemon, runRookery, waitFor } from '../helpers/processes.ts'
import { deployDir, publishRelease, startServerProcess, writeAgentConfig } from '../helpers/fleet.ts'

// A manifest server that fails in the ways real ones do. The agent must keep the release it runs,
// say what went wrong in one line, give up within its request timeout, and back off.

const TOKEN = 'faults-token-0123456789abcdef'
let root: string
let realUrl: string
let real: Daemon
let fake: Server
let fakeUrl: string
let mode = 'ok'
let requests = 0

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'rookery-manifest-faults-'))
  ;({ server: real, url: realUrl } = await startServerProcess(root, TOKEN))
  const source = join(root, 'build')
  await mkdir(source)
  await writeFile(join(source, 'index.html'), 'v1')
  await publishRelease(realUrl, TOKEN, source, 'v1')

  fake = createServer((req, res) => {
    requests++
    if (mode === 'ok') return void fetch(`${realUrl}/manifest`).then(async (r) => res.end(Buffer.from(await r.arrayBuffer())))
    if (mode === '500') {
      res.writeHead(500)
      return void res.end('internal error')
    }
    if (mode === 'garbage') return void res.end('<html>502 Bad Gateway</html>')
    if (mode === 'huge') {
      // 2 GB announced and streamed until the client hangs up.
      res.writeHead(200, { 'content-type': 'application/json' })
      const chunk = Buffer.alloc(1024 * 1024, 0x20)
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump)
      }
      res.on('close', () => res.destroy())
      return pump()
    }
    if (mode === 'slow') {
      // Headers at once, then one byte a second: only an overall time limit catches this.
      res.writeHead(200, { 'content-type': 'application/json' })
      const timer = setInterval(() => res.write(' '), 1000)
      res.on('close', () => clearInterval(timer))
    }
  })
  fake.keepAliveTimeout = 100
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
  fakeUrl = `http://127.0.0.1:${(fake.address() as { port: number }).port}`

  // The host first deploys v1 through the (still healthy) fake.
  const first = await runRookery(['agent', '--once', '--config', await writeAgentConfig(root, 'host', fakeUrl)])
  assert.equal(first.code, 0, first.stderr)
})

after(async () => {
  fake?.closeAllConnections()
  fake?.close()
  await real?.stop()
  await rm(root, { recursive: true, force: true })
})

const current = () => readlink(join(deployDir(root, 'host'), 'current'))

describe('agent --once against a failing manifest server', () => {
  const cases: Array<[string, RegExp]> = [
    ['500', /GET http:\/\/127\.0\.0\.1:\d+\/manifest: server answered 500/],
    ['garbage', /GET http:\/\/127\.0\.0\.1:\d+\/manifest: the answer is not JSON/],
    ['huge', /GET http:\/\/127\.0\.0\.1:\d+\/manifest: body over the \d+-byte limit/],
    ['slow', /GET http:\/\/127\.0\.0\.1:\d+\/manifest: no answer within 2000 ms/],
  ]
  for (const [name, message] of cases) {
    test(`${name}: exits 5 with one clear line and keeps the current release`, async () => {
      mode = name
      const started = Date.now()
      const r = await runRookery(['agent', '--once', '--config', await writeAgentConfig(root, 'host', fakeUrl)], {}, 30_000)
      assert.equal(r.code, 5, r.stderr)
      const lines = r.stderr.trim().split('\n')
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0]!, message)
      assert.ok(Date.now() - started < 15_000, 'the agent did not give up in time')
      const warnings = r.stdout.split('\n').filter((l) => l.includes('manifest poll failed'))
      assert.equal(warnings.length, 1)
      assert.equal(await current(), join(deployDir(root, 'host'), 'releases', 'v1'))
    })
  }
})

test('the agent daemon backs off while the manifest server fails, then recovers', async () => {
  mode = '500'
  // Cron polls only: the long-poll has its own back-off and would add requests of its own.
  const config = await writeAgentConfig(root, 'host', fakeUrl, ['long_poll: 0s'])
  const agent = new Daemon(['agent', '--config', config], join(root, 'daemon.log'))
  try {
    requests = 0
    await new Promise((r) => setTimeout(r, 8000))
    // Every second without back-off would be about 9 requests; with 1 s doubling: at 0, ~1, ~3, ~7 s.
    const failures = (await agent.logLines()).filter((l) => String(l.msg).startsWith('manifest poll failed'))
    assert.ok(requests >= 2 && requests <= 5, `${requests} requests in 8 s`)
    assert.equal(failures.length, requests, 'one log line per failed poll')
    assert.deepEqual(failures.map((l) => l.next_poll_in_ms), [1000, 2000, 4000, 8000].slice(0, failures.length))
    assert.equal(await current(), join(deployDir(root, 'host'), 'releases', 'v1'))
    mode = 'ok'
    await waitFor('a successful poll', async () => (await agent.logLines()).some((l) => l.msg === 'manifest changed'), 20_000)
  } finally {
    assert.equal(await agent.stop(), 0)
  }
})

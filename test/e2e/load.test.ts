import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { formatFanOut, formatLoad, runFanOut, runLoad, type LoadOptions } from '../../scripts/load.ts'
import { publishRelease, startServerProcess } from '../helpers/fleet.ts'
import { runRookery } from '../helpers/processes.ts'

/** A server process with release v1 of a one-file build (`build`, for more releases) published as web. */
async function withServer(prefix: string, body: (server: { url: string; token: string; build: string }) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), prefix))
  const token = 'load-token-0123456789abcdef'
  const { server, url } = await startServerProcess(root, token)
  try {
    const build = join(root, 'build')
    await mkdir(build)
    await writeFile(join(build, 'index.html'), 'v1')
    await publishRelease(url, token, build, 'v1')
    await body({ url, token, build })
  } finally {
    await server.stop()
    await rm(root, { recursive: true, force: true })
  }
}

// 200 simulated agents against one server process, ten times their normal rates, for 10 s (bounded).
// The full-minute run at normal rates is `npm run bench:load`.
test('200 agents polling and announcing get answers, with no errors', { timeout: 60_000 }, async () => {
  await withServer('rookery-load-', async ({ url }) => {
    const manifest = (await (await fetch(`${url}/manifest`)).json()) as { apps: { web: { releases: Array<{ infohash: string }> } } }
    const options: LoadOptions = { server: url, infohash: manifest.apps.web.releases[0]!.infohash, agents: 200, durationMs: 10_000, pollEveryMs: 1000, announceEveryMs: 3000 }
    const result = await runLoad(options)
    console.log(formatLoad(result, options).replace(/^/gm, '# '))
    assert.equal(result.poll.errors, 0, result.poll.firstError)
    assert.equal(result.announce.errors, 0, result.announce.firstError)
    assert.ok(result.poll.requests >= 1000, `only ${result.poll.requests} polls`)
    assert.ok(result.announce.requests >= 400, `only ${result.announce.requests} announces`)
    // After its first poll, an agent's polls are conditional and answered 304.
    assert.ok(result.notModified >= result.poll.requests - 200)
  })
})

// A rollback (a change of the manifest alone, no upload) reaching 300 agents that long-poll the manifest
// (wait=30): each sees the tag become current and fetches its .torrent. An agent fails if that takes 20 s,
// before its held request would end by itself, so a server that does not answer held requests when the
// manifest changes fails this. The latency is printed, not asserted; `npm run bench:load -- --fan-out 2000`
// measures a publish reaching more agents.
test('a rollback reaches 300 long-polling agents, each of which then fetches the release\'s .torrent', { timeout: 120_000 }, async () => {
  await withServer('rookery-fanout-', async ({ url, token, build }) => {
    await writeFile(join(build, 'index.html'), 'v2')
    await publishRelease(url, token, build, 'v2')
    const change = async () => {
      const r = await runRookery(['rollback', '--app', 'web', '--to', 'v1', '--server', url], { ROOKERY_TOKEN: token })
      if (r.code !== 0) throw new Error(`rollback failed (${r.code}): ${r.stderr}`)
    }
    const result = await runFanOut({ server: url, agents: 300, tag: 'v1', timeoutMs: 20_000, change })
    console.log(`# ${formatFanOut(result, 'rookery rollback --to v1')}`)
    assert.equal(result.errors, 0, result.firstError)
    assert.equal(result.informed, 300)
  })
})

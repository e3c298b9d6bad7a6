import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { formatLoad, runLoad, type LoadOptions } from '../../scripts/load.ts'
import { publishRelease, startServerProcess } from '../helpers/fleet.ts'

// 200 simulated agents against one server process, ten times their normal rates, for 10 s (bounded).
// The full-minute run at normal rates is `npm run bench:load`.
test('200 agents polling and announcing get answers, with no errors', { timeout: 60_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'rookery-load-'))
  const token = 'load-token-0123456789abcdef'
  const { server, url } = await startServerProcess(root, token)
  try {
    await mkdir(join(root, 'build'))
    await writeFile(join(root, 'build', 'index.html'), 'load')
    await publishRelease(url, token, join(root, 'build'), 'v1')
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
  } finally {
    await server.stop()
    await rm(root, { recursive: true, force: true })
  }
})

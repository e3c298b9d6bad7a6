import assert from 'node:assert/strict'
import { readlink, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { Daemon, waitFor } from '../helpers/processes.ts'
import { deployDir, publishRelease, serverWithFirstRelease, writeAgentConfig } from '../helpers/fleet.ts'

// With an hourly cron, only the long-poll can explain a host switching seconds after a publish.
test('a host starts deploying within moments of a publish, through the long-poll', { timeout: 90_000 }, async () => {
  const token = 'long-poll-token-0123456789'
  const { root, server, url, source } = await serverWithFirstRelease('rookery-long-poll-', token)
  let agent: Daemon | undefined
  try {
    const config = await writeAgentConfig(root, 'host', url, ['long_poll: 30s', 'schedule: "0 0 * * * *"'])
    agent = new Daemon(['agent', '--config', config], join(root, 'agent.log'))
    const current = () => readlink(join(deployDir(root, 'host'), 'current')).catch(() => '')
    await waitFor('v1 at start (the agent polls once when it starts)', async () => (await current()).endsWith('/v1'), 30_000)
    await new Promise((r) => setTimeout(r, 1000)) // the long-poll is now waiting with v1's ETag

    const manifestDownloads = async () => Number(/rookery_manifest_requests_total\{status="200"\} (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? NaN)
    const downloadsBefore = await manifestDownloads()
    await writeFile(join(source, 'index.html'), 'v2')
    await publishRelease(url, token, source, 'v2')
    const published = Date.now()
    await waitFor('v2 through the long-poll', async () => (await current()).endsWith('/v2'), 30_000, 50)
    const latency = Date.now() - published
    console.log(`# publish to current switched: ${latency} ms (cron: hourly, long_poll: 30s)`)
    const started = (await agent.logLines()).find((l) => l.msg === 'download started' && l.tag === 'v2')
    assert.ok(started, 'no download of v2 logged')
    assert.ok(Date.parse(String(started.time)) - published < 3000, 'the download did not start within 3 s of the publish')
    // Full manifest answers during the publish: one to `rookery publish` (it checks the tag is new) and one
    // to the agent's long-poll, whose document the deploy then uses instead of downloading it again.
    assert.equal(await manifestDownloads() - downloadsBefore, 2)
  } finally {
    assert.equal(await agent?.stop(), 0)
    await server.stop()
    await rm(root, { recursive: true, force: true })
  }
})

import assert from 'node:assert/strict'
import { mkdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { sha256File } from '../../src/release/hash.ts'
import { packDirectory } from '../../src/release/pack.ts'
import { Daemon, waitFor } from '../helpers/processes.ts'
import { SlowUpload } from '../helpers/slow-upload.ts'
import { deployDir, serverWithFirstRelease, writeAgentConfig } from '../helpers/fleet.ts'

const TOKEN = 'early-start-token-0123456789'

async function tarball(root: string, name: string, content: string): Promise<{ body: Buffer; sha256: string }> {
  const dir = join(root, `${name}-src`)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'index.html'), content)
  const path = join(root, `${name}.tar.gz`)
  await packDirectory(dir, path)
  return { body: await readFile(path), sha256: await sha256File(path) }
}

// The agent's cron is hourly: everything here comes through the long-poll.
test('a host starts its swarm process while a release for it uploads, deploys with it, and closes one no release used', { timeout: 120_000 }, async () => {
  const { root, server, url } = await serverWithFirstRelease('rookery-early-start-', TOKEN)
  let agent: Daemon | undefined
  try {
    // No seed window: the swarm process closes after each deploy, so each start shows in the log.
    const config = await writeAgentConfig(root, 'host', url, ['long_poll: 30s', 'seed_window: 0s', 'early_swarm_start: 3s', 'schedule: "0 0 * * * *"'])
    agent = new Daemon(['agent', '--config', config], join(root, 'agent.log'))
    const log = async (msg: string) => (await agent!.logLines()).filter((l) => l.msg === msg)
    const current = () => readlink(join(deployDir(root, 'host'), 'current')).catch(() => '')
    await waitFor('v1 at start', async () => (await current()).endsWith('/v1'), 30_000)
    await waitFor('the swarm process to close after v1', async () => (await log('swarm client closed')).length === 1, 20_000)
    await sleep(1000) // the long-poll is now held with v1's ETag

    // Another app's upload: the hint reaches this host before the manifest change does, and is ignored.
    const other = await tarball(root, 'api', 'api v1')
    assert.equal(await new SlowUpload(url, TOKEN, 'api/v1', other.body, other.sha256).finish(), 201)
    await waitFor('the manifest change of the api release', async () => (await log('manifest changed')).length >= 2, 20_000)
    assert.equal((await log('a release is being published: starting the swarm process')).length, 0, 'started a swarm for an app this host does not run')
    assert.equal((await log('swarm client listening')).length, 1)
    await sleep(1000)

    // A canary rollout of web to a group this host is not in: not for this host either.
    const canary = await tarball(root, 'web-v9', 'v9')
    assert.equal(await new SlowUpload(url, TOKEN, 'web/v9?rollout_group=other', canary.body, canary.sha256).finish(), 201)
    await waitFor('the manifest change of the canary', async () => (await log('manifest changed')).length >= 3, 20_000)
    assert.equal((await log('a release is being published: starting the swarm process')).length, 0, 'started a swarm for a rollout this host is not in')
    assert.ok((await current()).endsWith('/v1'))
    await sleep(1000)

    // An upload of web that never completes: the swarm process starts, then closes after early_swarm_start.
    const v2 = await tarball(root, 'web-v2', 'v2')
    const abandoned = new SlowUpload(url, TOKEN, 'web/v2', v2.body, v2.sha256)
    const [hint] = await waitFor('the early start', async () => {
      const lines = await log('a release is being published: starting the swarm process')
      return lines.length === 1 ? lines : undefined
    }, 20_000)
    assert.equal(hint!.app, 'web')
    await waitFor('the early swarm process to listen', async () => (await log('swarm client listening')).length === 2, 20_000)
    // A reconcile pass ending meanwhile (the manifest changed for the other app) must not close it.
    const other2 = await tarball(root, 'api-v2', 'api v2')
    assert.equal(await new SlowUpload(url, TOKEN, 'api/v2', other2.body, other2.sha256).finish(), 201)
    await waitFor('the manifest change of api v2', async () => (await log('manifest changed')).length >= 4, 20_000)
    await sleep(300)
    assert.equal((await log('swarm client closed')).length, 1, 'the early swarm process closed when a pass ended, with the upload still going')
    abandoned.req.destroy()
    const [, closed] = await waitFor('the unused swarm process to close', async () => {
      const lines = await log('swarm client closed')
      return lines.length === 2 ? lines : undefined
    }, 20_000)
    const keptMs = Date.parse(String(closed!.time)) - Date.parse(String(hint!.time))
    assert.ok(keptMs >= 2900, `closed ${keptMs} ms after the early start, before early_swarm_start (3s) was over`)
    assert.ok((await current()).endsWith('/v1'))
    await sleep(1000)

    // The upload completes this time: the deploy uses the swarm process started during the upload.
    const upload = new SlowUpload(url, TOKEN, 'web/v2', v2.body, v2.sha256)
    await waitFor('the second early start to listen', async () => (await log('swarm client listening')).length === 3, 20_000)
    assert.equal(await upload.finish(), 201)
    await waitFor('v2 through the long-poll', async () => (await current()).endsWith('/v2'), 30_000)
    const listening = await log('swarm client listening')
    assert.equal(listening.length, 3, 'the deploy started another swarm process instead of the early one')
    const [started] = (await agent.logLines()).filter((l) => l.msg === 'download started' && l.tag === 'v2')
    assert.ok(started && Date.parse(String(started.time)) >= Date.parse(String(listening[2]!.time)))
  } finally {
    assert.equal(await agent?.stop(), 0)
    await server.stop()
    await rm(root, { recursive: true, force: true })
  }
})

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

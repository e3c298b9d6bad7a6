import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { appendFile, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Daemon, freePort, runRookery, waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'
import { startServerProcess, writeAgentConfig } from '../helpers/fleet.ts'

// One server, three agents, real processes on loopback: publish, deploy, publish again, roll back.

const TOKEN = 'e2e-token-0123456789abcdef'
const RELEASE_BYTES = 24 * 1024 * 1024
const AGENTS = 3
const HOOK = `#!/bin/sh
# Records one line per run: what rookery told the hook, and where it ran.
echo "$ROOKERY_APP|$ROOKERY_TAG|$ROOKERY_RELEASE_DIR|$ROOKERY_PREVIOUS_TAG|$ROOKERY_PREVIOUS_RELEASE_DIR|$(pwd)" >> "$ROOKERY_DEPLOY_TO/hook.log"
echo "post-install ran for $ROOKERY_TAG"
`

let root: string
let serverUrl: string
let server: Daemon
const agents: Daemon[] = []
const deployDirs: string[] = []

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'rookery-e2e-'))
  // origin_upload_limit below what three hosts want at once on loopback: hosts must trade pieces.
  ;({ server, url: serverUrl } = await startServerProcess(root, TOKEN, ['origin_upload_limit: 8MiB', 'announce_interval: 5s']))
})

after(async () => {
  await Promise.all(agents.map((a) => a.stop()))
  await server?.stop()
  if (process.env.ROOKERY_KEEP_TEST_DIR) console.log(`test files kept in ${root}`)
  else await rm(root, { recursive: true, force: true })
})

async function publish(tag: string, source: string) {
  const result = await runRookery(['publish', source, '--app', 'web', '--tag', tag, '--server', serverUrl], { ROOKERY_TOKEN: TOKEN })
  assert.equal(result.code, 0, `publish ${tag} failed: ${result.stderr}`)
  return result.stdout
}

async function currentTags(): Promise<Array<string | null>> {
  return Promise.all(deployDirs.map((d) => readlink(join(d, 'current')).then((t) => t.split('/').at(-1)!, () => null)))
}

async function hookLines(deployDir: string): Promise<string[][]> {
  const text = await readFile(join(deployDir, 'hook.log'), 'utf8').catch(() => '')
  return text.split('\n').filter(Boolean).map((l) => l.split('|'))
}

/** `current` switches before the hook runs: wait until every host's hook wrote its line for `tag`. */
async function hooksRan(count: number, tag: string): Promise<void> {
  await waitFor(`the hook to run for ${tag} on every host`, async () => {
    const all = await Promise.all(deployDirs.map(hookLines))
    return all.every((lines) => lines.length >= count && lines.at(-1)?.[1] === tag)
  }, 60_000)
}

async function downloadsStarted(agent: Daemon, tag: string): Promise<number> {
  return (await agent.logLines()).filter((l) => l.msg === 'download started' && l.tag === tag).length
}

test('three agents deploy a release, follow a publish and a rollback, refuse a release whose hook fails', { timeout: 240_000 }, async () => {
  const source = join(root, 'source')
  await makeReleaseTree(source, RELEASE_BYTES, HOOK)
  const summary = await publish('v1', source)
  assert.match(summary, /^published web v1: .* sha256 [0-9a-f]{64}, infohash [0-9a-f]{40}, current v1$/m)

  const manifest = (await (await fetch(`${serverUrl}/manifest`)).json()) as { apps: Record<string, { current: string }> }
  assert.equal(manifest.apps.web?.current, 'v1')

  for (let i = 0; i < AGENTS; i++) {
    const deployTo = join(root, `host${i}`, 'srv', 'web')
    deployDirs.push(deployTo)
    const config = join(root, `agent${i}.yaml`)
    await writeFile(
      config,
      [
        `server: ${serverUrl}`,
        `state_dir: ${join(root, `host${i}`, 'state')}`,
        'schedule: "* * * * * *"',
        'seed_window: 2m',
        'torrent_port: 0',
        'stall_timeout: 30s',
        `host_id: host${i}`,
        'apps:',
        '  - name: web',
        `    deploy_to: ${deployTo}`,
        '    post_install: ./bin/post-install',
        '    hook_timeout: 30s',
      ].join('\n'),
    )
    agents.push(new Daemon(['agent', '--config', config], join(root, `agent${i}.log`)))
  }

  const started = Date.now()
  await waitFor('every host on v1', async () => (await currentTags()).every((t) => t === 'v1'), 90_000)
  console.log(`# deploy of ${RELEASE_BYTES / 2 ** 20} MiB to ${AGENTS} hosts: ${Date.now() - started} ms from agent start`)
  await hooksRan(1, 'v1')

  const expected = await treeDigest(source)
  for (const dir of deployDirs) {
    assert.deepEqual(await treeDigest(join(dir, 'current')), expected, `${dir} differs from the source`)
    // treeDigest skips .git on both sides, so look for it directly: publish must not ship it.
    assert.equal(existsSync(join(dir, 'current', '.git')), false, `${dir} got the source's .git`)
    const lines = await hookLines(dir)
    assert.equal(lines.length, 1, `hook ran ${lines.length} times on ${dir}`)
    const releaseDir = join(dir, 'releases', 'v1')
    assert.deepEqual(lines[0], ['web', 'v1', releaseDir, '', '', releaseDir])
  }

  // Not everything came from the server: what it sent (origin seeder + webseed) is less than what hosts got.
  const stats = (await (await fetch(`${serverUrl}/api/v1/stats`)).json()) as { webseed_bytes: number; origin_seeder_uploaded_bytes: number }
  const fromServer = stats.webseed_bytes + stats.origin_seeder_uploaded_bytes
  const tarballSize = Number(/: ([\d.]+) MiB/.exec(summary)![1]) * 2 ** 20
  console.log(`# server sent ${(fromServer / 2 ** 20).toFixed(1)} MiB for ${AGENTS} x ${(tarballSize / 2 ** 20).toFixed(1)} MiB`)
  assert.ok(fromServer < AGENTS * tarballSize * 0.9, `the server sent ${fromServer} bytes: hosts did not trade pieces`)

  // A second release: every host switches, and the hook sees v1 as previous.
  await appendFile(join(source, 'README.txt'), 'second release\n')
  await publish('v2', source)
  await waitFor('every host on v2', async () => (await currentTags()).every((t) => t === 'v2'), 90_000)
  await hooksRan(2, 'v2')
  const expectedV2 = await treeDigest(source)
  for (const dir of deployDirs) {
    assert.deepEqual(await treeDigest(join(dir, 'current')), expectedV2)
    const last = (await hookLines(dir)).at(-1)!
    assert.deepEqual(last.slice(0, 5), ['web', 'v2', join(dir, 'releases', 'v2'), 'v1', join(dir, 'releases', 'v1')])
  }

  // Rollback: hosts go back to the kept v1 without downloading it again, and run the hook for it.
  const rollback = await runRookery(['rollback', '--app', 'web', '--to', 'v1', '--server', serverUrl], { ROOKERY_TOKEN: TOKEN })
  assert.equal(rollback.code, 0, rollback.stderr)
  assert.match(rollback.stdout, /web: current v2 -> v1/)
  await waitFor('every host back on v1', async () => (await currentTags()).every((t) => t === 'v1'), 60_000)
  await hooksRan(3, 'v1')
  for (const [i, dir] of deployDirs.entries()) {
    assert.equal(await downloadsStarted(agents[i]!, 'v1'), 1, `host${i} downloaded v1 again`)
    const lines = await hookLines(dir)
    assert.equal(lines.length, 3)
    assert.deepEqual(lines.at(-1)!.slice(0, 4), ['web', 'v1', join(dir, 'releases', 'v1'), 'v2'])
  }

  // A release whose hook fails: hosts go back to the release they had (v1), record the failure, and do
  // not retry it at every poll.
  await writeFile(join(source, 'bin', 'post-install'), `${HOOK}echo "database migration failed" >&2\nexit 1\n`)
  await publish('v3', source)
  const failure = async (i: number) => {
    const state = JSON.parse(await readFile(join(root, `host${i}`, 'state', 'state.json'), 'utf8').catch(() => '{}'))
    return state.apps?.web?.failures?.v3 as { code: string; permanent: boolean; reason: string } | undefined
  }
  await waitFor('every host to record the v3 failure', async () => (await Promise.all(deployDirs.map((_, i) => failure(i)))).every(Boolean), 90_000)
  await new Promise((r) => setTimeout(r, 3000)) // three more polls
  for (const [i, dir] of deployDirs.entries()) {
    const recorded = (await failure(i))!
    assert.equal(recorded.code, 'ROOKERY_HOOK_FAILED')
    assert.equal(recorded.permanent, true)
    assert.match(recorded.reason, /exited 1.*database migration failed.*back on v1/)
    assert.equal((await hookLines(dir)).filter((l) => l[1] === 'v3').length, 1, 'the failed hook was retried')
  }
  assert.deepEqual(await currentTags(), deployDirs.map(() => 'v1'))

  // `agent --once` for a booting host: non-zero while the current release cannot be activated...
  const onceConfig = (name: string, server = serverUrl) => writeAgentConfig(root, name, server, [], ['post_install: ./bin/post-install'])
  const failed = await runRookery(['agent', '--once', '--config', await onceConfig('boot1')])
  assert.equal(failed.code, 3, failed.stderr)
  assert.match(failed.stderr, /rookery: not on the current release: web: on nothing, wanted v3 \(post_install exited 1/)
  // ...and 0 once the operator rolled back to a good release.
  const back = await runRookery(['rollback', '--app', 'web', '--to', 'v1', '--server', serverUrl], { ROOKERY_TOKEN: TOKEN })
  assert.equal(back.code, 0, back.stderr)
  const booted = await runRookery(['agent', '--once', '--config', await onceConfig('boot2')])
  assert.equal(booted.code, 0, booted.stderr)
  assert.equal(await readlink(join(root, 'boot2', 'srv', 'web', 'current')), join(root, 'boot2', 'srv', 'web', 'releases', 'v1'))
  // An unreachable server is a distinct exit code, with one clear line.
  const unreachable = await runRookery(['agent', '--once', '--config', await onceConfig('boot3', `http://127.0.0.1:${await freePort()}`)])
  assert.equal(unreachable.code, 5)
  assert.match(unreachable.stderr, /^rookery: GET http:\/\/127\.0\.0\.1:\d+\/manifest: /)

  for (const agent of agents) assert.equal(await agent.stop(), 0, 'agent did not stop cleanly on SIGTERM')
})

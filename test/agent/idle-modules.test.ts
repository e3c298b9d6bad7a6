import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, test } from 'node:test'
import { MAIN } from '../helpers/processes.ts'

const RECORDER = fileURLToPath(new URL('./fixtures/record-modules.mjs', import.meta.url))

// What only a download needs; an idle agent must not hold it in memory (docs/performance.md).
const DEPLOY_ONLY = ['webtorrent', 'bittorrent-protocol', 'parse-torrent', 'create-torrent', 'tar', 'undici', 'prom-client', 'bittorrent-tracker', 'send']
// Not needed at all: pino-pretty loads only when stdout is a terminal.
const NEVER = ['pino-pretty']

const cleanups: Array<() => Promise<void> | void> = []
after(async () => {
  for (const fn of cleanups.reverse()) await fn()
})

test('an agent with nothing to download loads none of the download-only modules (webtorrent, tar, undici, prom-client)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rookery-idle-modules-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  // The host is already on the manifest's current release: a poll finds nothing to do.
  const deployTo = join(dir, 'srv', 'web')
  await mkdir(join(deployTo, 'releases', 'v1'), { recursive: true })
  await symlink(join(deployTo, 'releases', 'v1'), join(deployTo, 'current'))
  const manifest = JSON.stringify({
    version: 1,
    serial: 1,
    updated_at: new Date(0).toISOString(),
    apps: {
      web: {
        current: 'v1',
        releases: [{ tag: 'v1', infohash: 'a'.repeat(40), sha256: 'b'.repeat(64), size: 1, created_at: new Date(0).toISOString(), torrent_url: 'http://127.0.0.1:9/t', tarball_url: 'http://127.0.0.1:9/r' }],
      },
    },
  })
  let longPolls = 0
  let reports = 0
  const server: Server = createServer((req, res) => {
    if (req.method === 'POST') {
      reports++
      req.resume()
      return void res.writeHead(204).end()
    }
    if (req.url?.includes('wait=')) longPolls++
    res.writeHead(200, { 'content-type': 'application/json', etag: '"m1"' }).end(manifest)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanups.push(() => {
    server.closeAllConnections()
    server.close()
  })
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const config = join(dir, 'agent.yaml')
  await writeFile(config, [`server: ${url}`, `state_dir: ${join(dir, 'state')}`, 'long_poll: 30s', 'torrent_port: 0', 'apps:', '  - name: web', `    deploy_to: ${deployTo}`].join('\n'))
  const list = join(dir, 'modules.txt')

  const agent = spawn(process.execPath, ['--import', RECORDER, MAIN, 'agent', '--config', config], { env: { ...process.env, RECORD_MODULES_TO: list }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  agent.stdout.on('data', (d: Buffer) => (output += d))
  agent.stderr.on('data', (d: Buffer) => (output += d))
  const exited = new Promise<number | null>((resolve) => agent.on('exit', resolve))
  const deadline = Date.now() + 30_000
  // A reconcile ran (its report came) and the long-poll is open: the idle loop is complete.
  while ((reports === 0 || longPolls === 0) && Date.now() < deadline && agent.exitCode === null) await new Promise((r) => setTimeout(r, 50))
  agent.kill('SIGTERM')
  assert.equal(await exited, 0, `the agent did not stop cleanly:\n${output}`)
  assert.ok(reports > 0 && longPolls > 0, `the agent did not poll and report within 30 s:\n${output}`)

  const loaded = (await readFile(list, 'utf8')).split('\n')
  const packages = new Set(loaded.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((p): p is string => p !== undefined))
  assert.ok(packages.has('pino') && packages.has('zod'), `the recorder saw no modules: ${[...packages].join(', ')}`)
  assert.deepEqual([...DEPLOY_ONLY, ...NEVER].filter((p) => packages.has(p)), [], `idle agent loaded: ${[...packages].sort().join(', ')}`)
  // zod's classic API gives every schema object dozens of methods of its own; the agent's schemas are on
  // zod/mini (src/zod.ts), which saved 1.4 MB of the packaged idle agent.
  const classicZod = loaded.filter((u) => /\/node_modules\/zod\/v4\/classic\//.test(u))
  assert.deepEqual(classicZod, [], 'the idle agent loaded zod\'s classic API: import src/zod.ts (zod/mini) instead of zod')
  // Nor Node's own copy of undici, behind fetch and the ESM face of node:http (src/http-request.ts).
  assert.ok(loaded.includes('NativeModule http'), 'the recorder saw none of Node\'s internal modules')
  assert.ok(!loaded.includes('NativeModule internal/deps/undici/undici'), 'the idle agent loaded Node\'s internal undici')
})

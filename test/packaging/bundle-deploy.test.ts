import assert from 'node:assert/strict'
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { stagePackage, type RookeryLauncher } from '../../scripts/staged-package.ts'
import { deployDir, publishRelease, startServerProcess, writeAgentConfig } from '../helpers/fleet.ts'
import { Daemon, waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// The agent as the .deb/.rpm run it (the esbuild bundle on the packaged runtime) deploys through the
// bundle's own HTTP for the download (src/swarm/http-fetch.ts in place of fetch, node:http taken as
// CommonJS): tracker announces and web seed ranges work, and Node's internal undici is never loaded.
// The server and `publish` run from source; only the agent is the bundle.

const TOKEN = 'bundle-deploy-token-0123456789'
const RECORDER = fileURLToPath(new URL('../agent/fixtures/record-modules.mjs', import.meta.url))
const UNDICI = 'NativeModule internal/deps/undici/undici'

let root: string
let launcher: RookeryLauncher
let server: Daemon
let serverUrl: string
let source: string

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'rookery-bundle-deploy-'))
  launcher = await stagePackage(root)
  // The origin seeder capped low: with the web seed at once, most bytes come over HTTP.
  ;({ server, url: serverUrl } = await startServerProcess(root, TOKEN, ['origin_upload_limit: 2MiB']))
  source = join(root, 'build')
  await makeReleaseTree(source, 3 * 1024 * 1024, '#!/bin/sh\n')
  await publishRelease(serverUrl, TOKEN, source, 'v1')
})

after(async () => {
  await server?.stop()
  await rm(root, { recursive: true, force: true })
})

/**
 * Runs the bundled agent until it switched `current` to v1; returns its JSON log and the modules loaded by
 * its swarm process (which downloads) and by the agent itself.
 */
async function deployWithBundle(name: string, extra: string[]): Promise<{ log: Array<Record<string, unknown>>; modules: string[]; agentModules: string[] }> {
  const config = await writeAgentConfig(root, name, serverUrl, extra)
  const modulesFile = join(root, `${name}-modules.txt`)
  const [node, ...rest] = launcher.agentCommand
  const agent = new Daemon(['agent', '--config', config], join(root, `${name}.log`), { ...launcher.env.agent, RECORD_MODULES_TO: modulesFile }, [node!, '--import', RECORDER, ...rest])
  await waitFor(`the bundled agent ${name} to switch to v1`, async () => {
    if (agent.child.exitCode !== null) throw new Error(`the bundled agent exited (${agent.child.exitCode}):\n${await readFile(agent.logFile, 'utf8')}`)
    return (await agent.logLines()).some((l) => l.msg === 'current switched')
  }, 60_000).catch(async (err: unknown) => {
    await agent.stop()
    throw err
  })
  // The agent runs without a JIT (packaging/node-flags); its swarm process, which downloads, with one.
  const swarmPid = (await agent.logLines()).find((l) => l.msg === 'swarm client listening')?.pid
  const argv = async (pid: unknown) => (await readFile(`/proc/${String(pid)}/cmdline`, 'utf8')).split('\0')
  assert.ok((await argv(agent.child.pid)).includes('--jitless'), 'the bundled agent runs with a JIT')
  assert.ok(!(await argv(swarmPid)).includes('--jitless') && (await argv(swarmPid)).includes('__swarm-worker'), `swarm process ${String(swarmPid)} runs without a JIT`)
  assert.equal(await agent.stop(), 0, `the bundled agent did not stop cleanly:\n${await readFile(agent.logFile, 'utf8')}`)
  assert.equal(await readlink(join(deployDir(root, name), 'current')), join(deployDir(root, name), 'releases', 'v1'))
  assert.deepEqual(await treeDigest(join(deployDir(root, name), 'current')), await treeDigest(source))
  const read = async (file: string) => (await readFile(file, 'utf8')).split('\n')
  return { log: await agent.logLines(), modules: await read(`${modulesFile}.swarm`), agentModules: await read(modulesFile) }
}

test('the bundled agent finds the origin through an HTTP announce, downloads from it, and never loads undici', async () => {
  // No web seed for a minute: every byte must come from the peer the announce returned.
  const { log, modules, agentModules } = await deployWithBundle('swarm', ['webseed_fallback: 60s'])
  const complete = log.find((l) => l.msg === 'download complete')!
  assert.ok(Number(complete.from_peers) > 0 && complete.from_webseed === 0, `expected bytes from the announced origin only: ${JSON.stringify(complete)}`)
  assert.ok(modules.includes('NativeModule http'), 'the recorder saw none of Node\'s internal modules')
  assert.ok(!modules.includes(UNDICI), 'the download loaded Node\'s internal undici')
  assert.ok(agentModules.includes('NativeModule http') && !agentModules.includes(UNDICI), 'the agent process loaded Node\'s internal undici')
})

test('the bundled agent downloads web seed ranges through the same HTTP, still without undici', async () => {
  const { log, modules } = await deployWithBundle('webseed', ['webseed_fallback: 0s'])
  const complete = log.find((l) => l.msg === 'download complete')!
  assert.ok(Number(complete.from_webseed) > 0, `expected bytes from the web seed: ${JSON.stringify(complete)}`)
  assert.ok(!modules.includes(UNDICI), 'the download loaded Node\'s internal undici')
})

test('the bundled agent polls on its cron schedule, node-cron reading the local time from Date (src/agent/cron-local-time.ts)', async () => {
  const polls: number[] = []
  const manifest = JSON.stringify({ version: 1, serial: 1, updated_at: new Date(0).toISOString(), apps: {} })
  const fake = createServer((req, res) => {
    if (req.method === 'POST') return void req.resume().on('end', () => res.writeHead(204).end())
    polls.push(Date.now())
    res.writeHead(200, { 'content-type': 'application/json', etag: '"m1"' }).end(manifest)
  })
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r))
  const config = join(root, 'cron.yaml')
  await writeFile(config, [
    `server: http://127.0.0.1:${(fake.address() as AddressInfo).port}`,
    `state_dir: ${join(root, 'cron', 'state')}`,
    'schedule: "*/2 * * * * *"',
    'long_poll: 0s',
    'torrent_port: 0',
    'apps:',
    '  - name: web',
    `    deploy_to: ${join(root, 'cron', 'srv', 'web')}`,
  ].join('\n'))
  // A zone with a half-hour offset: what node-cron matches is the local time.
  const recorded = join(root, 'cron-modules.txt')
  const [node, ...rest] = launcher.agentCommand
  const agent = new Daemon(['agent', '--config', config], join(root, 'cron.log'), { ...launcher.env.agent, TZ: 'Asia/Kolkata', RECORD_MODULES_TO: recorded }, [node!, '--import', RECORDER, ...rest])
  try {
    await waitFor('four polls', async () => {
      if (agent.child.exitCode !== null) throw new Error(`the bundled agent exited (${agent.child.exitCode}):\n${await readFile(agent.logFile, 'utf8')}`)
      return polls.length >= 4
    }, 20_000, 50)
  } finally {
    fake.close()
    fake.closeAllConnections()
  }
  assert.equal(await agent.stop(), 0, `the bundled agent did not stop cleanly:\n${await readFile(agent.logFile, 'utf8')}`)
  // The first poll is the one at start; the cron's come at even seconds, 2 s apart.
  for (const at of polls.slice(1, 4)) assert.ok(at % 2000 < 600, `a poll at ${new Date(at).toISOString()} is not at an even second`)
  for (let i = 2; i < 4; i++) assert.ok(Math.abs(polls[i]! - polls[i - 1]! - 2000) < 600, `polls ${polls.slice(0, 4).map((p) => new Date(p).toISOString()).join(', ')} are not 2 s apart`)
  // And through the patched path: node-cron's own makes an Intl.DateTimeFormat (and loads ICU) on its ticks.
  const formatters = (await readFile(recorded, 'utf8')).split('\n').filter((l) => l.startsWith('Intl.DateTimeFormat'))
  assert.deepEqual(formatters, [], 'the bundled agent made Intl date formatters: node-cron did not take the Date-based path')
})

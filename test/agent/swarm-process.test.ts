import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { agentNodeFlags } from '../../scripts/staged-package.ts'
import { AGENT_ONLY_NODE_FLAGS } from '../../src/agent/swarm.ts'
import { deployDir, publishRelease, startServerProcess, writeAgentConfig } from '../helpers/fleet.ts'
import { Daemon, MAIN, waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// The agent downloads, extracts and seeds in a child process (src/agent/swarm.ts): once the seed window
// is over that process is gone, with what the deploy left in memory; the agent itself never loads the
// download's modules. A swarm process that dies fails the deploy without touching `current`, and a killed
// agent takes its swarm process down.

const TOKEN = 'swarm-process-token-0123456789'
const RECORDER = fileURLToPath(new URL('./fixtures/record-modules.mjs', import.meta.url))
const DOWNLOAD_ONLY = ['webtorrent', 'bittorrent-protocol', 'parse-torrent', 'tar']

let root: string
let server: Daemon
let serverUrl: string
let source: string
const agents: Daemon[] = []

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'rookery-swarm-process-'))
  // The origin seeder capped, so that a download lasts long enough to be interrupted.
  ;({ server, url: serverUrl } = await startServerProcess(root, TOKEN, ['origin_upload_limit: 2MiB']))
  source = join(root, 'build')
  await makeReleaseTree(source, 8 * 1024 * 1024, '#!/bin/sh\n')
  await publishRelease(serverUrl, TOKEN, source, 'v1')
})

after(async () => {
  for (const agent of agents) await agent.stop()
  await server?.stop()
  await rm(root, { recursive: true, force: true })
})

/** A source agent (peers only: the web seed would make the download too quick to interrupt). */
async function startAgent(name: string, extra: string[], command?: string[], env: Record<string, string> = {}): Promise<Daemon> {
  const config = await writeAgentConfig(root, name, serverUrl, ['webseed_fallback: 60s', ...extra])
  const agent = new Daemon(['agent', '--config', config], join(root, `${name}.log`), env, command)
  agents.push(agent)
  return agent
}

const logged = async (agent: Daemon, msg: string) => (await agent.logLines()).filter((l) => l.msg === msg)

/** The pid of the swarm process the agent started last. */
const swarmPid = async (agent: Daemon) => Number((await waitFor('the swarm process to listen', async () => (await logged(agent, 'swarm client listening')).at(-1)))['pid'])

/** Running (a zombie waiting for a reaper counts as exited). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
  } catch {
    return false
  }
}

async function assertDeployed(name: string): Promise<void> {
  assert.equal(await readlink(join(deployDir(root, name), 'current')), join(deployDir(root, name), 'releases', 'v1'))
  assert.deepEqual(await treeDigest(join(deployDir(root, name), 'current')), await treeDigest(source))
}

const packagesIn = (list: string) => new Set(list.split('\n').map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((p) => p !== undefined))

test('after the seed window the swarm process is gone, and the agent itself never loaded webtorrent, tar or parse-torrent', async () => {
  const modules = join(root, 'modules.txt')
  const agent = await startAgent('after', ['seed_window: 1s'], [process.execPath, '--import', RECORDER, MAIN], { RECORD_MODULES_TO: modules })
  const pid = await swarmPid(agent)
  await waitFor('the swarm to close after the seed window', async () => (await logged(agent, 'swarm client closed')).length > 0, 60_000)
  await assertDeployed('after')
  assert.equal((await logged(agent, 'seed window over')).length, 1)
  await waitFor(`swarm process ${pid} to be gone`, () => !alive(pid), 5000)
  assert.equal(await agent.stop(), 0)
  const agentPackages = packagesIn(await readFile(modules, 'utf8'))
  const swarmPackages = packagesIn(await readFile(`${modules}.swarm`, 'utf8'))
  assert.ok(agentPackages.has('pino'), `the recorder saw none of the agent's modules: ${[...agentPackages].join(', ')}`)
  assert.deepEqual(DOWNLOAD_ONLY.filter((p) => agentPackages.has(p)), [], `the agent loaded: ${[...agentPackages].sort().join(', ')}`)
  assert.deepEqual(DOWNLOAD_ONLY.filter((p) => !swarmPackages.has(p)), [], `the swarm process did not load: ${[...swarmPackages].sort().join(', ')}`)
})

test('a swarm process that dies mid-download fails that deploy, leaves current alone, and the next attempt deploys', async () => {
  const agent = await startAgent('crash', ['seed_window: 1s'])
  const pid = await swarmPid(agent)
  await waitFor('the download to start', async () => (await logged(agent, 'download started')).length > 0, 30_000)
  process.kill(pid, 'SIGKILL')
  const failed = await waitFor('the deploy to fail', async () => (await logged(agent, 'deploy failed'))[0], 30_000)
  assert.equal(failed['code'], 'ROOKERY_SWARM_EXITED')
  assert.match(String(failed['err']), /swarm process exited with signal SIGKILL during the install of web v1/)
  await assert.rejects(stat(join(deployDir(root, 'crash'), 'current')), { code: 'ENOENT' })
  assert.equal((await logged(agent, 'swarm process exited unexpectedly')).length, 1)
  // The retry opens a new swarm process and resumes the download.
  await waitFor('the retry to switch current', async () => (await logged(agent, 'current switched')).length > 0, 60_000)
  assert.notEqual(await swarmPid(agent), pid)
  await assertDeployed('crash')
  assert.equal(await agent.stop(), 0)
})

test('a killed agent takes its seeding swarm process down', async () => {
  const agent = await startAgent('killed', ['seed_window: 5m'])
  await waitFor('the deploy', async () => (await logged(agent, 'current switched')).length > 0, 60_000)
  const pid = await swarmPid(agent)
  assert.ok(alive(pid), 'the swarm process should be seeding')
  agent.child.kill('SIGKILL')
  await waitFor(`swarm process ${pid} to exit after its agent`, () => !alive(pid), 10_000)
})

test('the swarm process leaves out exactly the flags packaging/node-flags gives the agent alone', () => {
  assert.deepEqual(AGENT_ONLY_NODE_FLAGS, agentNodeFlags())
})

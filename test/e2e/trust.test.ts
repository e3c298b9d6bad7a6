import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { Daemon } from '../helpers/processes.ts'
import { runRookery } from '../helpers/processes.ts'
import { deployDir, publishRelease, startServerProcess, writeAgentConfig } from '../helpers/fleet.ts'

// Signed releases: keygen, publish --sign, and agents with trusted_keys refusing anything else.

const TOKEN = 'trust-token-0123456789abcdef'
let root: string
let url: string
let server: Daemon
let source: string
let trusted: string
let fake: Server | undefined

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'rookery-trust-'))
  ;({ server, url } = await startServerProcess(root, TOKEN))
  source = join(root, 'build')
  await runRookery(['keygen', '--out', root, '--name', 'release']) // checked in the first test
  trusted = (await readFile(join(root, 'release.pub'), 'utf8').catch(() => '')).trim()
})

after(async () => {
  fake?.close()
  await server?.stop()
  await rm(root, { recursive: true, force: true })
})

async function state(name: string) {
  return JSON.parse(await readFile(join(root, name, 'state', 'state.json'), 'utf8')) as {
    apps: { web: { failures: Record<string, { code: string; permanent: boolean; reason: string }> } }
  }
}

async function once(name: string, server = url, keys = [trusted]) {
  const config = await writeAgentConfig(root, name, server, keys.length ? ['trusted_keys:', ...keys.map((k) => `  - "${k}"`)] : [])
  return runRookery(['agent', '--once', '--config', config])
}

async function sourceWith(content: string) {
  await rm(source, { recursive: true, force: true })
  await import('node:fs/promises').then((fs) => fs.mkdir(source, { recursive: true }))
  await writeFile(join(source, 'index.html'), content)
}

test('keygen writes a private key only its owner can read, and never overwrites one', async () => {
  assert.match(trusted, /^ed25519:[A-Za-z0-9+/]{43}=$/)
  assert.equal((await stat(join(root, 'release.key'))).mode & 0o777, 0o600)
  const again = await runRookery(['keygen', '--out', root, '--name', 'release'])
  assert.equal(again.code, 2)
  assert.match(again.stderr, /already exists/)
})

test('a release signed with a trusted key is deployed', async () => {
  await sourceWith('v1')
  const out = await publishRelease(url, TOKEN, source, 'v1', ['--sign', join(root, 'release.key')])
  assert.match(out, /signed by [0-9a-f]{16}/)
  const manifest = (await (await fetch(`${url}/manifest`)).json()) as { apps: { web: { releases: Array<{ signature?: { key_id: string } }> } } }
  assert.ok(manifest.apps.web.releases[0]?.signature?.key_id)
  const r = await once('signed')
  assert.equal(r.code, 0, r.stderr)
  assert.equal(await readlink(join(deployDir(root, 'signed'), 'current')), join(deployDir(root, 'signed'), 'releases', 'v1'))
})

test('an unsigned release is refused and recorded, and the host stays on its release', async () => {
  await sourceWith('v2 unsigned')
  await publishRelease(url, TOKEN, source, 'v2')
  const r = await once('signed')
  assert.equal(r.code, 3)
  assert.match(r.stderr, /wanted v2 \(web v2 is not signed, and trusted_keys are configured/)
  const failure = (await state('signed')).apps.web.failures.v2!
  assert.equal(failure.code, 'ROOKERY_UNSIGNED')
  assert.equal(failure.permanent, true)
  assert.equal(await readlink(join(deployDir(root, 'signed'), 'current')), join(deployDir(root, 'signed'), 'releases', 'v1'))
})

test('a release signed by another key is refused', async () => {
  await runRookery(['keygen', '--out', root, '--name', 'intruder'])
  await sourceWith('v3 by someone else')
  await publishRelease(url, TOKEN, source, 'v3', ['--sign', join(root, 'intruder.key')])
  const r = await once('signed')
  assert.equal(r.code, 3)
  assert.match(r.stderr, /web v3 is signed by key [0-9a-f]{16}, which is not in trusted_keys/)
  assert.equal((await state('signed')).apps.web.failures.v3?.code, 'ROOKERY_BAD_SIGNATURE')
})

test('a manifest entry altered after signing is refused before anything is downloaded', async () => {
  // Roll back to the signed v1, then serve a manifest whose v1 entry claims other content.
  const back = await runRookery(['rollback', '--app', 'web', '--to', 'v1', '--server', url], { ROOKERY_TOKEN: TOKEN })
  assert.equal(back.code, 0, back.stderr)
  fake = createServer(async (_req, res) => {
    const manifest = (await (await fetch(`${url}/manifest`)).json()) as { apps: { web: { releases: Array<{ tag: string; sha256: string }> } } }
    for (const r of manifest.apps.web.releases) if (r.tag === 'v1') r.sha256 = 'f'.repeat(64)
    res.end(JSON.stringify(manifest))
  })
  await new Promise<void>((resolve) => fake!.listen(0, '127.0.0.1', resolve))
  const r = await once('altered', `http://127.0.0.1:${(fake.address() as { port: number }).port}`)
  assert.equal(r.code, 3)
  assert.match(r.stderr, /the signature by key [0-9a-f]{16} does not match the release/)
  const log = r.stdout
  assert.doesNotMatch(log, /download started/)
})

test('without trusted_keys an unsigned release is accepted with a warning', async () => {
  const back = await runRookery(['rollback', '--app', 'web', '--to', 'v2', '--server', url], { ROOKERY_TOKEN: TOKEN })
  assert.equal(back.code, 0, back.stderr)
  const r = await once('unchecked', url, [])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /"level":"warn".*no trusted_keys configured: release signatures are not checked/)
})

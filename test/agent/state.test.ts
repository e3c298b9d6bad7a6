import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { emptyAppState, StateFile } from '../../src/agent/state.ts'
import type { AppState } from '../../src/agent/state.ts'
import { RookeryError } from '../../src/errors.ts'

let tmp = ''
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-state-'))
})
after(() => rm(tmp, { recursive: true, force: true }))

const newDir = () => mkdtemp(join(tmp, 'state-'))

const WEB: AppState = {
  previous: 'v1',
  failures: {
    v3: { sha256: 'a'.repeat(64), code: 'ROOKERY_UNAVAILABLE', reason: 'timeout', permanent: false, attempts: 2, at: '2024-01-01T00:00:00.000Z', retry_after: '2024-01-01T00:01:00.000Z' },
    v4: { sha256: 'b'.repeat(64), code: 'ROOKERY_HOOK_FAILED', reason: 'exit 1', permanent: true, attempts: 1, at: '2024-01-01T00:00:00.000Z' },
  },
  last_deploy: { tag: 'v2', at: '2024-01-01T00:00:00.000Z', duration_ms: 1234, downloaded_from_peers: 10, downloaded_from_webseed: 5, uploaded: 7 },
}

describe('StateFile', () => {
  test('a missing file gives empty app state (and creates the state dir)', async () => {
    const dir = join(await newDir(), 'nested', 'agent')
    const state = new StateFile(dir)
    assert.equal(state.path, join(dir, 'state.json'))
    await state.load()
    assert.deepEqual(state.app('web'), emptyAppState())
    assert.deepEqual(await readdir(dir), [], 'loading alone writes nothing')
  })

  test('saveApp is read back by a fresh StateFile', async () => {
    const dir = await newDir()
    const first = new StateFile(dir)
    await first.load()
    await first.saveApp('web', WEB)
    await first.saveApp('api', { previous: null, failures: {} })
    assert.deepEqual(first.app('web'), WEB)

    const second = new StateFile(dir)
    await second.load()
    assert.deepEqual(second.app('web'), WEB)
    assert.deepEqual(second.app('api'), { previous: null, failures: {} })
    assert.deepEqual(second.app('other'), emptyAppState())
    assert.equal(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')).version, 1)
  })

  test('saving one app keeps the others', async () => {
    const dir = await newDir()
    const first = new StateFile(dir)
    await first.load()
    await first.saveApp('web', WEB)
    const second = new StateFile(dir)
    await second.load()
    await second.saveApp('api', { previous: 'x', failures: {} })
    await second.saveApp('web', { ...WEB, previous: 'v2' })
    const third = new StateFile(dir)
    await third.load()
    assert.equal(third.app('web').previous, 'v2')
    assert.equal(third.app('api').previous, 'x')
  })

  test('no temp files are left after saves', async () => {
    const dir = await newDir()
    const state = new StateFile(dir)
    await state.load()
    for (let i = 0; i < 5; i++) await state.saveApp(`app${i}`, { previous: `v${i}`, failures: {} })
    assert.deepEqual(await readdir(dir), ['state.json'])
  })

  test('fields left out of a hand-written file get their defaults', async () => {
    const dir = await newDir()
    await writeFile(join(dir, 'state.json'), JSON.stringify({ version: 1, apps: { web: {} } }))
    const state = new StateFile(dir)
    await state.load()
    assert.deepEqual(state.app('web'), { previous: null, failures: {} })
  })

  const corrupt: Array<[string, string]> = [
    ['not JSON', '{"version": 1, "apps": {'],
    ['empty file', ''],
    ['JSON null', 'null'],
    ['unknown version', JSON.stringify({ version: 2, apps: {} })],
    ['apps missing', JSON.stringify({ version: 1 })],
    ['failure of the wrong shape', JSON.stringify({ version: 1, apps: { web: { failures: { v1: { sha256: 'x' } } } } })],
  ]
  for (const [name, text] of corrupt) {
    test(`a corrupt state.json (${name}) is ROOKERY_BAD_STATE`, async () => {
      const dir = await newDir()
      await writeFile(join(dir, 'state.json'), text)
      const state = new StateFile(dir)
      await assert.rejects(state.load(), (err: unknown) => {
        assert.ok(err instanceof RookeryError)
        assert.equal(err.code, 'ROOKERY_BAD_STATE')
        assert.ok(err.message.includes(join(dir, 'state.json')), err.message)
        assert.ok(err.hint)
        return true
      })
    })
  }

  test('other read errors are not hidden as empty state', async () => {
    const dir = await newDir()
    await mkdir(join(dir, 'state.json'))
    await assert.rejects(new StateFile(dir).load(), (err: unknown) => (err as NodeJS.ErrnoException).code === 'EISDIR')
  })
})

import assert from 'node:assert/strict'
import { lstat, mkdir, mkdtemp, readdir, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { AppLayout } from '../../src/agent/layout.ts'

let tmp = ''
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-layout-'))
})
after(() => rm(tmp, { recursive: true, force: true }))

const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false)

/** A prepared layout in a fresh directory, with a release directory (holding one file) per tag. */
async function newLayout(tags: string[] = []): Promise<AppLayout> {
  const layout = new AppLayout(join(await mkdtemp(join(tmp, 'app-')), 'deploy'))
  await layout.prepare()
  for (const tag of tags) {
    await mkdir(layout.releaseDir(tag))
    await writeFile(join(layout.releaseDir(tag), 'VERSION'), tag)
  }
  return layout
}

/** Sets each release's mtime to `base + i minutes`, so tags[last] is the newest. */
async function ageInOrder(layout: AppLayout, tags: string[]): Promise<void> {
  const base = Date.parse('2024-01-01T00:00:00Z')
  for (const [i, tag] of tags.entries()) {
    const t = new Date(base + i * 60_000)
    await utimes(layout.releaseDir(tag), t, t)
  }
}

describe('AppLayout', () => {
  test('paths follow the Capistrano layout', () => {
    const layout = new AppLayout('/srv/web')
    assert.equal(layout.releasesDir, '/srv/web/releases')
    assert.equal(layout.currentLink, '/srv/web/current')
    assert.equal(layout.releaseDir('v1'), '/srv/web/releases/v1')
  })

  test('prepare creates releases/ and removes .staging-* leftovers only', async () => {
    const layout = await newLayout(['v1'])
    await mkdir(join(layout.releasesDir, '.staging-abc', 'deep'), { recursive: true })
    await writeFile(join(layout.releasesDir, '.staging-abc', 'deep', 'f'), 'x')
    await writeFile(join(layout.releasesDir, '.staging-file'), 'x')
    await mkdir(join(layout.releasesDir, '.other'))
    await layout.prepare()
    assert.deepEqual((await readdir(layout.releasesDir)).sort(), ['.other', 'v1'])
    assert.ok(await exists(join(layout.releaseDir('v1'), 'VERSION')))
  })

  test('prepare is idempotent', async () => {
    const layout = await newLayout()
    await layout.prepare()
    assert.deepEqual(await readdir(layout.releasesDir), [])
  })

  test('currentTag is null without a link', async () => {
    const layout = await newLayout(['v1'])
    assert.equal(await layout.currentTag(), null)
  })

  test('currentTag is null when current points outside releases/ or is a directory', async () => {
    const layout = await newLayout(['v1'])
    await symlink(tmp, layout.currentLink)
    assert.equal(await layout.currentTag(), null)
    await rm(layout.currentLink)
    await mkdir(layout.currentLink)
    assert.equal(await layout.currentTag(), null)
  })

  test('switchCurrent creates the link, then replaces it atomically', async () => {
    const layout = await newLayout(['v1', 'v2'])
    await layout.switchCurrent('v1')
    assert.ok((await lstat(layout.currentLink)).isSymbolicLink())
    assert.equal(await readlink(layout.currentLink), layout.releaseDir('v1'))
    assert.equal(await layout.currentTag(), 'v1')

    await layout.switchCurrent('v2')
    assert.equal(await readlink(layout.currentLink), layout.releaseDir('v2'))
    assert.equal(await layout.currentTag(), 'v2')
    // following the link reaches the release's files
    assert.ok(await exists(join(layout.currentLink, 'VERSION')))
    assert.deepEqual((await readdir(layout.deployTo)).sort(), ['current', 'releases'], 'no .current-* temp link left')
  })

  test('switchCurrent over a real directory fails and leaves no temp link', async () => {
    const layout = await newLayout(['v1'])
    await mkdir(join(layout.currentLink, 'inside'), { recursive: true })
    await assert.rejects(layout.switchCurrent('v1'))
    assert.deepEqual((await readdir(layout.deployTo)).sort(), ['current', 'releases'])
  })

  test('clearCurrent removes the link but not the release; twice is fine', async () => {
    const layout = await newLayout(['v1'])
    await layout.switchCurrent('v1')
    await layout.clearCurrent()
    assert.equal(await exists(layout.currentLink), false)
    assert.equal(await layout.currentTag(), null)
    assert.ok(await exists(join(layout.releaseDir('v1'), 'VERSION')))
    await layout.clearCurrent()
  })

  test('installedTags lists release directories, not dot-dirs, files or symlinks', async () => {
    const layout = await newLayout(['v1', 'v2'])
    await mkdir(join(layout.releasesDir, '.staging-x'))
    await mkdir(join(layout.releasesDir, '.hidden'))
    await writeFile(join(layout.releasesDir, 'notes.txt'), 'x')
    await symlink(layout.releaseDir('v1'), join(layout.releasesDir, 'alias'))
    assert.deepEqual((await layout.installedTags()).sort(), ['v1', 'v2'])
  })

  test('installedTags is empty when releases/ does not exist', async () => {
    const layout = new AppLayout(join(tmp, 'never-prepared'))
    assert.deepEqual(await layout.installedTags(), [])
  })

  test('touch makes a release the newest', async () => {
    const layout = await newLayout(['v1', 'v2', 'v3'])
    await ageInOrder(layout, ['v1', 'v2', 'v3'])
    await layout.touch('v1')
    assert.deepEqual((await layout.prune(1, new Set())).sort(), ['v2', 'v3'])
    assert.deepEqual(await layout.installedTags(), ['v1'])
  })

  describe('prune', () => {
    const ORDER = ['v1', 'v2', 'v3', 'v4', 'v5'] // oldest first
    const cases: Array<{ name: string; keep: number; protect: string[]; removed: string[] }> = [
      { name: 'keeps the newest N by mtime', keep: 2, protect: [], removed: ['v1', 'v2', 'v3'] },
      { name: 'nothing when N covers all', keep: 5, protect: [], removed: [] },
      { name: 'nothing when N exceeds all', keep: 10, protect: [], removed: [] },
      { name: 'never an old protected tag', keep: 2, protect: ['v1'], removed: ['v2', 'v3'] },
      { name: 'protected tags among the newest count towards N', keep: 2, protect: ['v5', 'v2'], removed: ['v1', 'v3'] },
      { name: 'keep 0 removes all but the protected', keep: 0, protect: ['v3'], removed: ['v1', 'v2', 'v4', 'v5'] },
    ]
    for (const c of cases) {
      test(c.name, async () => {
        const layout = await newLayout(ORDER)
        await ageInOrder(layout, ORDER)
        const removed = await layout.prune(c.keep, new Set(c.protect))
        assert.deepEqual([...removed].sort(), c.removed)
        const left = ORDER.filter((t) => !c.removed.includes(t))
        assert.deepEqual((await layout.installedTags()).sort(), left)
      })
    }

    test('order comes from mtimes, not names', async () => {
      const layout = await newLayout(['a', 'b', 'c'])
      await ageInOrder(layout, ['c', 'a', 'b']) // c oldest, b newest
      assert.deepEqual(await layout.prune(2, new Set()), ['c'])
    })

    test('leaves current, staging and dot-dirs alone', async () => {
      const layout = await newLayout(['v1', 'v2', 'v3'])
      await ageInOrder(layout, ['v1', 'v2', 'v3'])
      await layout.switchCurrent('v1')
      await mkdir(join(layout.releasesDir, '.staging-x'))
      const removed = await layout.prune(1, new Set(['v1']))
      assert.deepEqual(removed, ['v2'])
      assert.equal(await layout.currentTag(), 'v1')
      assert.ok((await stat(join(layout.currentLink, 'VERSION'))).isFile())
      assert.deepEqual((await readdir(layout.releasesDir)).sort(), ['.staging-x', 'v1', 'v3'])
    })
  })
})

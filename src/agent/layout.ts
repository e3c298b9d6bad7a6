import { mkdir, readdir, readlink, rename, rm, stat, symlink, utimes } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { syncDirectory } from '../atomic-file.ts'

/**
 * One app's directory on a host, as Capistrano users know it:
 *   <deploy_to>/releases/<tag>/   one directory per installed release, complete or absent
 *   <deploy_to>/current           symlink to releases/<tag>, switched atomically
 */
export class AppLayout {
  readonly deployTo: string
  readonly releasesDir: string
  readonly currentLink: string

  constructor(deployTo: string) {
    this.deployTo = deployTo
    this.releasesDir = join(deployTo, 'releases')
    this.currentLink = join(deployTo, 'current')
  }

  releaseDir(tag: string): string {
    return join(this.releasesDir, tag)
  }

  /** Creates releases/ and removes staging directories left by an interrupted extraction. */
  async prepare(): Promise<void> {
    await mkdir(this.releasesDir, { recursive: true })
    for (const entry of await readdir(this.releasesDir)) {
      if (entry.startsWith('.staging-')) await rm(join(this.releasesDir, entry), { recursive: true, force: true })
    }
  }

  /** The tag `current` points at, or null when there is none (or it points elsewhere). */
  async currentTag(): Promise<string | null> {
    let target: string
    try {
      target = await readlink(this.currentLink)
    } catch {
      return null
    }
    return dirname(target) === this.releasesDir ? basename(target) : null
  }

  /** Tags with a release directory. */
  async installedTags(): Promise<string[]> {
    try {
      return (await readdir(this.releasesDir, { withFileTypes: true }))
        .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
        .map((e) => e.name)
    } catch {
      return []
    }
  }

  /** Marks a release as just installed (retention keeps the newest by this time). */
  async touch(tag: string): Promise<void> {
    const now = new Date()
    await utimes(this.releaseDir(tag), now, now)
  }

  /** Points `current` at a release: a new symlink under a temp name renamed over the old one. */
  async switchCurrent(tag: string): Promise<void> {
    const temp = join(this.deployTo, `.current-${randomBytes(6).toString('hex')}`)
    await symlink(this.releaseDir(tag), temp)
    try {
      await rename(temp, this.currentLink)
    } catch (err) {
      await rm(temp, { force: true })
      throw err
    }
    await syncDirectory(this.deployTo)
  }

  /** Removes `current` (a first release whose hook failed has nothing to go back to). */
  async clearCurrent(): Promise<void> {
    await rm(this.currentLink, { force: true })
  }

  /**
   * Deletes all but the newest `keep` releases (by install time), never one in `protect` (current and
   * previous). Returns the tags removed. A release that cannot be removed is passed to `onError` (or, without
   * it, fails the call) and the others are still removed.
   */
  async prune(keep: number, protect: ReadonlySet<string>, onError?: (tag: string, err: unknown) => void): Promise<string[]> {
    const tags = await this.installedTags()
    const dated = await Promise.all(tags.map(async (tag) => ({ tag, mtime: (await stat(this.releaseDir(tag))).mtimeMs })))
    dated.sort((a, b) => b.mtime - a.mtime)
    const removed: string[] = []
    for (const { tag } of dated.slice(keep)) {
      if (protect.has(tag)) continue
      try {
        await rm(this.releaseDir(tag), { recursive: true, force: true })
        removed.push(tag)
      } catch (err) {
        if (!onError) throw err
        onError(tag, err)
      }
    }
    return removed
  }
}

import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'

/**
 * Writes a release-like directory: nested dirs, random (incompressible) files totalling about
 * `totalBytes`, an executable hook script, a symlink, and a .git directory that must not be shipped.
 */
export async function makeReleaseTree(root: string, totalBytes: number, hookScript: string): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true })
  await mkdir(join(root, 'assets', 'img'), { recursive: true })
  await mkdir(join(root, '.git', 'objects'), { recursive: true })
  await writeFile(join(root, '.git', 'HEAD'), 'ref: refs/heads/main\n')
  await writeFile(join(root, 'bin', 'post-install'), hookScript)
  await chmod(join(root, 'bin', 'post-install'), 0o755)
  await writeFile(join(root, 'README.txt'), 'sample release\n')
  await symlink('README.txt', join(root, 'LINK.txt'))
  const sizes = [0.5, 0.25, 0.125, 0.0625, 0.0625].map((share) => Math.floor(totalBytes * share))
  for (const [i, size] of sizes.entries()) {
    await writeFile(join(root, i % 2 ? 'assets/img' : 'assets', `blob-${i}.bin`), randomBytes(size))
  }
}

/** path -> sha256 (files), "link:<target>" (symlinks) or "dir" for every entry under root, skipping .git. */
export async function treeDigest(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name === '.git') continue
      const path = join(dir, entry.name)
      const key = relative(root, path)
      if (entry.isSymbolicLink()) out[key] = `link:${await readlink(path)}`
      else if (entry.isDirectory()) {
        out[key] = 'dir'
        await walk(path)
      } else out[key] = createHash('sha256').update(await readFile(path)).digest('hex')
    }
  }
  await walk(root)
  return out
}

import { spawnSync } from 'node:child_process'

/** Debian's Python, where python3-libtorrent installs (a pyenv or venv python3 on PATH would not see it). */
export const DEBIAN_PYTHON = '/usr/bin/python3'

interface Tool {
  what: string
  pkg: string
  present: () => boolean
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0

const TOOLS: Tool[] = [
  { what: 'ip', pkg: 'iproute2', present: () => has('ip') },
  { what: 'tc', pkg: 'iproute2', present: () => has('tc') },
  { what: 'curl', pkg: 'curl', present: () => has('curl') },
  { what: 'aria2c', pkg: 'aria2', present: () => has('aria2c') },
  { what: 'python3 libtorrent', pkg: 'python3-libtorrent', present: () => spawnSync(DEBIAN_PYTHON, ['-c', 'import libtorrent'], { stdio: 'ignore' }).status === 0 },
  { what: 'gnuplot', pkg: 'gnuplot-nox', present: () => has('gnuplot') },
]

/**
 * Checks root and the tools the test bed runs; installs missing ones from Debian (one `apt-get update`,
 * one `apt-get install -y`) unless `install` is false, then fails naming what is still missing.
 */
export function ensureTools(install: boolean): void {
  if (process.getuid?.() !== 0) throw new Error('the fleet test bed creates network namespaces and needs root: run it as root (e.g. sudo npm run bench:fleet)')
  let missing = TOOLS.filter((t) => !t.present())
  if (missing.length > 0 && install) {
    const pkgs = [...new Set(missing.map((t) => t.pkg))]
    console.log(`# installing ${pkgs.join(' ')} with apt-get`)
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env, timeout: 300_000 })
    if (update.status !== 0) throw new Error(`apt-get update failed (exit ${update.status}); install ${pkgs.join(' ')} by hand and rerun`)
    const inst = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env, timeout: 600_000 })
    if (inst.status !== 0) throw new Error(`apt-get install ${pkgs.join(' ')} failed (exit ${inst.status}); install them by hand and rerun`)
    missing = TOOLS.filter((t) => !t.present())
  }
  if (missing.length > 0) throw new Error(`missing ${missing.map((t) => `${t.what} (Debian package ${t.pkg})`).join(', ')}: install them and rerun`)
}

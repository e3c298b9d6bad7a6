import { readFileSync } from 'node:fs'
import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ExitCode, RookeryError } from '../errors.ts'

/**
 * One agent per state_dir: two agents (the service and a hand-run `--once`, say) would race on
 * state.json, the downloads and the `current` links. The lock file holds the owner's pid; a lock left
 * by a process that is gone (a crash, SIGKILL) is taken over.
 */
export async function lockStateDir(stateDir: string): Promise<() => Promise<void>> {
  const path = join(stateDir, 'agent.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o644)
      await handle.writeFile(`${process.pid}\n`)
      await handle.close()
      return () => rm(path, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim())
    if (owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new RookeryError('ROOKERY_LOCKED', `another rookery agent (pid ${owner}) uses state_dir ${stateDir}`, {
        exitCode: ExitCode.usage,
        hint: 'stop the rookery-agent service before running an agent by hand, or give this one its own state_dir',
      })
    }
    await rm(path, { force: true }) // stale: its owner is gone
  }
  throw new RookeryError('ROOKERY_LOCKED', `cannot take the lock ${path}`, { exitCode: ExitCode.usage })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  // A killed agent not yet reaped by its parent is a zombie: it answers signals but holds nothing.
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true
  }
}

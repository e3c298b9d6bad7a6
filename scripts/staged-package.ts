// Runs rookery as the .deb and .rpm install it, without installing them: scripts/package.ts stages the
// installed tree (ROOKERY_PKG_STAGE_ONLY=1: the esbuild bundle and its chunks, the stripped runtime,
// /usr/bin/rookery), and the launcher's command runs with /usr/lib/rookery pointing into that tree. The
// systemd unit's Environment= assignments come along, as systemd would set them. Benchmarks use this so
// they measure what users run rather than the TypeScript sources.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

const REPO = join(import.meta.dirname, '..')

/**
 * How to start the rookery CLI: the command (append the verb and its arguments) and extra environment.
 * `command[0]` is always the Node binary, so Node flags (e.g. --cpu-prof) can go right after it.
 */
export interface RookeryLauncher {
  form: 'source' | 'package'
  command: string[]
  /** The same for `rookery agent`, which the package runs with flags of its own (packaging/node-flags). */
  agentCommand: string[]
  /** What systemd would add to the environment of the agent's or the server's unit. */
  env: Record<'agent' | 'server', Record<string, string>>
}

/** The TypeScript sources on the pinned Node that runs this script, with the package's runtime flags (as bin/rookery). */
const SOURCE_COMMAND = [process.execPath, ...nodeFlags(), join(REPO, 'src/main.ts')]
export const SOURCE_LAUNCHER: RookeryLauncher = {
  form: 'source',
  command: SOURCE_COMMAND,
  // Not the agent's own flags: --jitless would leave no WebAssembly for Node's TypeScript stripping.
  agentCommand: SOURCE_COMMAND,
  env: { agent: {}, server: {} },
}

/** The runtime flags of packaging/node-flags for every verb (one per line, # comments); throws on anything but plain flags. */
export function nodeFlags(): string[] {
  return flagLines().filter((l) => !l.startsWith('agent ')).map(plainFlag)
}

/** The flags packaging/node-flags gives the packaged agent's own process only ("agent --flag" lines). */
export function agentNodeFlags(): string[] {
  return flagLines().filter((l) => l.startsWith('agent ')).map((l) => plainFlag(l.slice('agent '.length).trim()))
}

function flagLines(): string[] {
  return readFileSync(join(REPO, 'packaging/node-flags'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
}

function plainFlag(flag: string): string {
  if (!/^--[a-z0-9-]+(=[A-Za-z0-9._-]+)?$/.test(flag)) throw new Error(`packaging/node-flags: ${JSON.stringify(flag)} is not a plain --flag or --flag=value`)
  return flag
}

/** Stages the package under `dir` (about a second) and returns its launcher and the units' environment. */
export async function stagePackage(dir: string): Promise<RookeryLauncher> {
  const out = join(dir, 'package')
  try {
    execFileSync(process.execPath, [join(REPO, 'scripts/package.ts')], {
      env: { ...process.env, ROOKERY_PKG_OUT: out, ROOKERY_PKG_STAGE_ONLY: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 300_000,
    })
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim()
    throw new Error(`staging the package failed: ${stderr || (err as Error).message}`)
  }
  const stage = join(out, 'stage')
  const script = await readFile(join(stage, 'usr/bin/rookery'), 'utf8')
  const staged = (words: string[]) => words.map((word) => word.replace(/^\/usr\/lib\/rookery\//, `${join(stage, 'usr/lib/rookery')}/`))
  const [agentCommand, command] = launcherCommands(script).map(staged) as [string[], string[]]
  const env = async (unit: string) => assignments(unitEnvironment(await readFile(join(REPO, 'packaging/systemd', unit), 'utf8')))
  return { form: 'package', command, agentCommand, env: { agent: await env('rookery-agent.service'), server: await env('rookery-server.service') } }
}

/**
 * The words of the launcher's two `exec /usr/lib/rookery/node ... "$@"` lines (the agent's, then every
 * other verb's), without `exec` and `"$@"`.
 */
function launcherCommands(script: string): string[][] {
  const lines = script.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('exec '))
  const commands = lines.map((line) => line.split(/\s+/).filter(Boolean))
  if (commands.length !== 2 || commands.some((words) => words.at(-1) !== '"$@"' || words[1] !== '/usr/lib/rookery/node' || words.some((w, i) => i > 0 && i < words.length - 1 && /["'$`\\]/.test(w)))) {
    throw new Error(`the staged /usr/bin/rookery does not have two plain 'exec /usr/lib/rookery/node ... "$@"' lines (the agent's, then the rest): update scripts/staged-package.ts\n${script}`)
  }
  return commands.map((words) => words.slice(1, -1))
}

/** NAME=value strings as an environment object (the value may hold '='). */
export function assignments(pairs: string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
}

/** The assignments of a unit's Environment= lines, unquoted as systemd does ("A=b c" D=e). */
export function unitEnvironment(unit: string): string[] {
  const pairs: string[] = []
  for (const line of unit.split('\n')) {
    const m = /^Environment=(.*)$/.exec(line.trim())
    if (m) for (const word of m[1]!.match(/"[^"]*"|'[^']*'|\S+/g) ?? []) pairs.push(/^["']/.test(word) ? word.slice(1, -1) : word)
  }
  return pairs
}

#!/usr/bin/env node
import type { Command } from 'commander'
import pkg from '../package.json' with { type: 'json' }
import { ExitCode, RookeryError, describeError } from './errors.ts'

type Register = (program: Command) => void

/** Same as SWARM_WORKER_VERB in src/agent/swarm.ts (not imported: main.ts loads no verb's modules up front). */
const SWARM_WORKER_VERB = '__swarm-worker'

/**
 * Each verb's module, imported only when that verb runs (or all of them for help and unknown verbs): the
 * long-running agent should not hold the server's modules (tracker, webtorrent, send) in memory, nor the
 * server the publisher's.
 */
const VERBS: Record<string, () => Promise<Register>> = {
  server: async () => {
    const { registerServer } = await import('./cli/server.ts')
    return (program) => registerServer(program, pkg.version)
  },
  publish: async () => (await import('./cli/publish.ts')).registerPublish,
  agent: async () => (await import('./cli/agent.ts')).registerAgent,
  rollback: async () => (await import('./cli/rollback.ts')).registerRollback,
  keygen: async () => (await import('./cli/keygen.ts')).registerKeygen,
  status: async () => (await import('./cli/status.ts')).registerStatus,
  // rollout.ts also registers promote, pin and unpin (see VERB_MODULES)
  rollout: async () => (await import('./cli/rollout.ts')).registerRollout,
}

/** Verbs registered by another verb's module. */
const VERB_MODULES: Record<string, string> = { promote: 'rollout', pin: 'rollout', unpin: 'rollout' }

/** `rookery <verb>`: parses argv, runs the verb, and turns any error into one line and an exit code. */
async function main(argv: string[]): Promise<number> {
  if (argv[2] === 'agent' || argv[2] === SWARM_WORKER_VERB) keepYoungGenerationSmall()
  if (argv[2] === SWARM_WORKER_VERB) {
    // The agent's swarm process (src/agent/swarm.ts forks it); not a verb for people.
    await (await import('./agent/swarm-worker.ts')).runSwarmWorker()
    return ExitCode.ok
  }
  // Imported here, not at the top: the swarm process has no command line to parse.
  const { Command, CommanderError } = await import('commander')
  const program = new Command('rookery')
    .description('release distribution over BitTorrent inside the datacenter')
    .version(pkg.version, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
  const verb = argv[2] === undefined ? undefined : (VERB_MODULES[argv[2]] ?? argv[2])
  const load = verb !== undefined && Object.hasOwn(VERBS, verb) ? [VERBS[verb]!] : Object.values(VERBS)
  for (const register of await Promise.all(load.map((l) => l()))) register(program)
  try {
    await program.parseAsync(argv)
    return ExitCode.ok
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; bad flags were already printed by commander.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage
    }
    return report(err)
  }
}

/**
 * The agent is a long-running daemon judged by its RSS. V8 doubles the young generation whenever much
 * survives a scavenge, and on a host with gigabytes of RAM lets it grow to 134 MB (measured during a
 * 2 GiB download, 1 MB of it in use); it never gives that back. A growth factor of 1 keeps it at its
 * initial size (about 4 MB instead of 17 MB at idle): 5 MB less idle, 30-40 MB less during a download,
 * for more frequent (cheap) scavenges. V8 reads this flag whenever it would grow the space, so setting it
 * at run time works; it is set before the verb's modules load, whose loading already grows it.
 */
function keepYoungGenerationSmall(): void {
  process.getBuiltinModule('node:v8').setFlagsFromString('--semi-space-growth-factor=1')
}

function report(err: unknown): number {
  if (err instanceof RookeryError) {
    process.stderr.write(`rookery: ${describeError(err)}\n`)
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`)
    return err.exitCode
  }
  process.stderr.write(`rookery: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  return ExitCode.unexpected
}

process.exitCode = await main(process.argv)

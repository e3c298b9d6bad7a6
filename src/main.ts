#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import pkg from '../package.json' with { type: 'json' }
import { ExitCode, RookeryError, describeError } from './errors.ts'
import { registerAgent } from './cli/agent.ts'
import { registerKeygen } from './cli/keygen.ts'
import { registerRollout } from './cli/rollout.ts'
import { registerStatus } from './cli/status.ts'
import { registerPublish } from './cli/publish.ts'
import { registerRollback } from './cli/rollback.ts'
import { registerServer } from './cli/server.ts'

/** `rookery <verb>`: parses argv, runs the verb, and turns any error into one line and an exit code. */
async function main(argv: string[]): Promise<number> {
  const program = new Command('rookery')
    .description('release distribution over BitTorrent inside the datacenter')
    .version(pkg.version, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
  registerServer(program, pkg.version)
  registerPublish(program)
  registerAgent(program)
  registerRollback(program)
  registerKeygen(program)
  registerStatus(program)
  registerRollout(program)
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

import type { Command } from 'commander'
import { createLogger } from '../log.ts'
import { loadServerConfig } from '../server/config.ts'
import { startServer } from '../server/server.ts'
import { untilSignal } from './signals.ts'

export function registerServer(program: Command, version: string): void {
  program
    .command('server')
    .description('run the tracker, manifest, webseed, publish API and origin seeder on one port')
    .option('-c, --config <file>', 'server config (YAML)', '/etc/rookery/server.yaml')
    .action(async (opts: { config: string }) => {
      const config = await loadServerConfig(opts.config)
      const log = createLogger('server')
      const server = await startServer(config, log, version)
      const signal = await untilSignal()
      log.info({ signal }, 'stopping')
      await server.close()
    })
}

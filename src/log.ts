import { pino, type Logger } from 'pino'

// pino-pretty (and what it pulls in) is loaded only for a terminal: a daemon logging to journald or a
// file never needs it, and an idle agent is judged by its RSS.
const pretty = process.stdout.isTTY ? (await import('pino-pretty')).default : undefined

export type { Logger }

/**
 * One JSON object per line on stdout (journald and log shippers read it as is), one line per event;
 * on a terminal, the same events as readable lines. Level from ROOKERY_LOG_LEVEL (default info).
 */
export function createLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  const options = {
    level: process.env.ROOKERY_LOG_LEVEL ?? 'info',
    base: { component, ...fields },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  }
  if (pretty) {
    return pino(options, pretty({ sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true }))
  }
  return pino(options, pino.destination({ dest: 1, sync: true }))
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}

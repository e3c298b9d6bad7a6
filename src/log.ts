import { pino, type Logger } from 'pino'

export type { Logger }

/**
 * One JSON object per line on stdout (journald and log shippers read it as is), one line per event.
 * Level from ROOKERY_LOG_LEVEL (default info).
 */
export function createLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return pino(
    {
      level: process.env.ROOKERY_LOG_LEVEL ?? 'info',
      base: { component, ...fields },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 1, sync: true }),
  )
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}

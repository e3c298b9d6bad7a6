/**
 * node-cron's date parts in the host's own time zone, read with Date's local getters instead of
 * `Intl.DateTimeFormat('en-US')`.
 *
 * node-cron 4 formats the time through Intl on every tick, even for a task without a time zone (the
 * agent's). The ICU data Intl touches then stays resident: about 8 MB of an idle agent's 73 MB.
 * The package's bundle puts these two functions in front of node-cron's own `buildDateParts` and
 * `getTimezoneGMT` when a task has no time zone (scripts/package.ts, `patchNodeCron`); node-cron still
 * parses, matches and schedules. test/agent/cron-local-time.test.ts checks that they give what node-cron's
 * own give, in several time zones and across DST changes.
 */

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const

/** The object node-cron's `buildDateParts` returns. */
export interface CronDateParts {
  day: number
  month: number
  year: number
  hour: number
  minute: number
  second: number
  millisecond: number
  weekday: string
  /** 'Z' or 'GMT+hh:mm' (read lazily by node-cron, as its own is). */
  readonly gmt: string
}

export function localDateParts(date: Date): CronDateParts {
  const parts = {
    day: date.getDate(),
    month: date.getMonth() + 1,
    year: date.getFullYear(),
    hour: date.getHours(),
    minute: date.getMinutes(),
    second: date.getSeconds(),
    millisecond: date.getMilliseconds(),
    weekday: WEEKDAYS[date.getDay()]!,
  }
  let gmt: string | undefined
  return Object.defineProperty(parts, 'gmt', { enumerable: true, configurable: true, get: () => (gmt ??= localGMT(date)) }) as CronDateParts
}

/** The local offset at `date` as node-cron's `getTimezoneGMT` writes it: 'Z' for none, else 'GMT+05:30'. */
export function localGMT(date: Date): string {
  const offset = -date.getTimezoneOffset()
  if (offset === 0) return 'Z'
  const minutes = Math.abs(offset)
  const pad = (n: number) => String(n).padStart(2, '0')
  return `GMT${offset > 0 ? '+' : '-'}${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`
}

/**
 * The agent's poll schedule: cron expressions in node-cron's syntax, evaluated in local time, without a
 * dependency. node-cron computes every match through Intl.DateTimeFormat, and ICU's code and data cost an
 * idle agent about 8 MB of RSS (node-cron itself a little more); this is plain Date arithmetic.
 *
 * Syntax: five fields (minute hour day-of-month month day-of-week) or six (seconds first); each field a
 * comma-separated list of `*`, `N`, `N-M` (wrapping around, e.g. `fri-mon`), with an optional `/step`
 * (`*\/10`, `0-30/5`, `5/15`); month and weekday names (`jan`, `monday`), 0 or 7 for Sunday, `?` for `*`
 * in the day fields, and @yearly @annually @monthly @weekly @daily @midnight @hourly. As in node-cron,
 * a time matches when every field matches (day of month AND day of week). Quartz's L, W and # are not
 * supported and are refused when the config is read.
 */

export interface CronSchedule {
  /** The first matching time strictly after `after` (whole seconds). */
  next(after: Date): Date
}

const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december']
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday']

interface Field {
  name: string
  min: number
  max: number
  names?: string[]
  /** Value of names[0]. */
  namesFrom?: number
}

const FIELDS: Field[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, namesFrom: 1 },
  { name: 'day of week', min: 0, max: 7, names: WEEKDAYS, namesFrom: 0 },
]

/** Iterations of the search for the next match: enough for any satisfiable expression (a leap day is at most 8 years away). */
const MAX_STEPS = 100_000

/** Parses a cron expression; throws an Error saying what is wrong with it. */
export function parseCron(expression: string): CronSchedule {
  const text = NICKNAMES[expression.trim().toLowerCase()] ?? expression
  const parts = text.trim().split(/\s+/)
  if (parts.length !== 5 && parts.length !== 6) throw new Error(`${parts.length} fields, expected 5 or 6`)
  if (parts.length === 5) parts.unshift('0')
  const [second, minute, hour, day, month, weekday] = parts.map((part, i) => parseField(part, FIELDS[i]!))
  // 7 is Sunday too.
  if (weekday![7]) weekday![0] = true
  const schedule: CronSchedule = {
    next(after: Date): Date {
      let t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000)
      for (let i = 0; i < MAX_STEPS; i++) {
        if (!month![t.getMonth() + 1]) {
          t = new Date(t.getFullYear(), t.getMonth() + 1, 1)
        } else if (!day![t.getDate()] || !weekday![t.getDay()]) {
          t = new Date(t.getFullYear(), t.getMonth(), t.getDate() + 1)
        } else if (!hour![t.getHours()]) {
          // Hours, minutes and seconds step in elapsed time, so the hour repeated when clocks go back is
          // run through twice and the hour skipped when they go forward is skipped.
          t = new Date(t.getTime() + (3600 - t.getMinutes() * 60 - t.getSeconds()) * 1000)
        } else if (!minute![t.getMinutes()]) {
          t = new Date(t.getTime() + (60 - t.getSeconds()) * 1000)
        } else if (!second![t.getSeconds()]) {
          t = new Date(t.getTime() + 1000)
        } else {
          return t
        }
      }
      throw new Error(`cron expression ${JSON.stringify(expression)} never matches`)
    },
  }
  // "0 0 30 2 *" parses but never matches: refuse it here rather than at the first tick.
  schedule.next(new Date(2000, 0, 1))
  return schedule
}

/** The values a field allows, as a lookup table indexed by value. */
function parseField(text: string, field: Field): boolean[] {
  const allowed = new Array<boolean>(field.max + 1).fill(false)
  const what = `${field.name} ${JSON.stringify(text)}`
  const items = text === '?' && (field.name === 'day of month' || field.name === 'day of week') ? '*' : text
  for (const item of items.split(',')) {
    const m = /^(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:\/(\d+))?$/i.exec(item)
    if (!m) throw new Error(`${what}: cannot read ${JSON.stringify(item)}${/[LW#]/i.test(item) ? ' (L, W and # are not supported)' : ''}`)
    const step = m[3] === undefined ? 1 : Number(m[3])
    if (!(step >= 1)) throw new Error(`${what}: step must be at least 1`)
    let first: number
    let last: number
    if (m[1] === '*') {
      if (m[2] !== undefined) throw new Error(`${what}: cannot read ${JSON.stringify(item)}`)
      first = field.min
      last = field.name === 'day of week' ? 6 : field.max
    } else {
      first = value(m[1]!, field, what)
      // "5/15" is 5, 20, 35, 50: from N to the end of the range.
      last = m[2] !== undefined ? value(m[2], field, what) : m[3] !== undefined ? field.max : first
    }
    const size = field.max - field.min + 1
    const span = first <= last ? last - first : last - first + size
    for (let offset = 0; offset <= span; offset += step) {
      const v = first + offset
      allowed[v > field.max ? v - size : v] = true
    }
  }
  return allowed
}

function value(text: string, field: Field, what: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text)
    if (n < field.min || n > field.max) throw new Error(`${what}: ${n} is out of range (${field.min}-${field.max})`)
    return n
  }
  const name = text.toLowerCase()
  const index = field.names?.findIndex((full) => full === name || full.slice(0, 3) === name) ?? -1
  if (index < 0) throw new Error(`${what}: ${JSON.stringify(text)} is not a number${field.names ? ' or name' : ''}${/[LW#]/i.test(text) ? ' (L, W and # are not supported)' : ''}`)
  return index + field.namesFrom!
}

/** Longest single timer: a far-away match is approached in steps, so a changed wall clock is noticed. */
const MAX_TIMER_MS = 60 * 60 * 1000

export interface ScheduledTask {
  stop(): void
}

/**
 * Calls `onTick` at every match of `schedule`, each call after a random delay of up to `jitterMs` (so a
 * fleet does not poll in lockstep). A tick is skipped while the previous one is still waiting or running
 * (node-cron's noOverlap). `onTick` must not throw; its promise's outcome is ignored.
 */
export function scheduleCron(schedule: CronSchedule, onTick: () => Promise<unknown>, options: { jitterMs?: number } = {}): ScheduledTask {
  let timer: NodeJS.Timeout | undefined
  let delayed: NodeJS.Timeout | undefined
  let busy = false
  let stopped = false
  let due = schedule.next(new Date())

  const tick = () => {
    if (busy) return
    busy = true
    const run = () => {
      if (stopped) return void (busy = false)
      onTick().finally(() => (busy = false)).catch(() => undefined)
    }
    const delay = options.jitterMs ? Math.floor(Math.random() * options.jitterMs) : 0
    if (delay > 0) delayed = setTimeout(run, delay)
    else run()
  }
  const arm = () => {
    if (stopped) return
    const wait = due.getTime() - Date.now()
    timer = setTimeout(() => {
      const now = Date.now()
      if (now >= due.getTime()) {
        tick()
        // After a long sleep of the host (or a clock jump), the next match is counted from now, not from the missed one.
        due = schedule.next(new Date(Math.max(now, due.getTime())))
      }
      arm()
    }, Math.min(Math.max(0, wait), MAX_TIMER_MS))
  }
  arm()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
      clearTimeout(delayed)
    },
  }
}

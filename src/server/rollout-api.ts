import type { IncomingMessage, ServerResponse } from 'node:http'
import { addPin, promoteRollout, removePin, setRollout } from '../manifest/changes.ts'
import { HttpError, readSmallBody, sendJson } from './http-util.ts'
import type { PublishContext } from './publish-api.ts'
import * as z from '../zod.ts'

const group = z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/))
const hostName = z.string().check(z.minLength(1), z.maxLength(255))
const target = z.union([z.strictObject({ host: hostName }), z.strictObject({ group })])
const bodies = {
  rollout: z.strictObject({ tag: z.string(), percent: z.optional(z.number().check(z.minimum(0), z.maximum(100))), groups: z.optional(z.array(group)) }),
  pin: z.union([z.strictObject({ host: hostName, tag: z.string() }), z.strictObject({ group, tag: z.string() })]),
  unpin: target,
}

/**
 * Staged rollouts and pins, all token-authenticated like publish:
 *   POST /api/v1/apps/<app>/rollout  {"tag", "percent"?, "groups"?}   start, widen or narrow a rollout
 *   POST /api/v1/apps/<app>/promote                                   the rollout's tag becomes current
 *   POST /api/v1/apps/<app>/pin      {"host"|"group", "tag"}          hold hosts on a tag (pause)
 *   POST /api/v1/apps/<app>/unpin    {"host"|"group"}
 */
export async function handleRolloutCommand(req: IncomingMessage, res: ServerResponse, ctx: PublishContext, app: string, verb: string): Promise<void> {
  if (!ctx.store.manifest.apps[app]) throw new HttpError(404, 'ROOKERY_UNKNOWN_APP', `app ${app} has no releases on this server`)
  const now = new Date()
  const requireKept = (tag: string) => {
    if (!ctx.store.findRelease(app, tag)) throw new HttpError(404, 'ROOKERY_UNKNOWN_TAG', `${app} has no kept release ${tag}`)
  }
  if (verb === 'promote') {
    const before = ctx.store.manifest.apps[app]?.rollout
    if (!before) throw new HttpError(409, 'ROOKERY_NO_ROLLOUT', `${app} has no rollout to promote`)
    await ctx.store.update((m) => ({ manifest: promoteRollout(m, app, now) ?? m, removed: [] }))
    ctx.log.info({ app, tag: before.tag }, 'rollout promoted')
    return sendJson(res, 200, { app, current: before.tag })
  }
  const schema = bodies[verb as keyof typeof bodies]
  if (!schema) throw new HttpError(404, 'ROOKERY_NOT_FOUND', `no command ${verb}`)
  const parsed = schema.safeParse(parseJson(await readSmallBody(req)))
  if (!parsed.success) throw new HttpError(400, 'ROOKERY_BAD_REQUEST', `bad ${verb} request: ${parsed.error.issues[0]?.message}`)
  const body = parsed.data
  if (verb === 'rollout') {
    const rollout = body as z.output<typeof bodies.rollout>
    requireKept(rollout.tag)
    await ctx.store.update((m) => ({ manifest: setRollout(m, app, rollout, now), removed: [] }))
  } else if (verb === 'pin') {
    const pin = body as z.output<typeof bodies.pin>
    requireKept(pin.tag)
    await ctx.store.update((m) => ({ manifest: addPin(m, app, pin, now), removed: [] }))
  } else {
    const unpin = body as z.output<typeof bodies.unpin>
    const next = removePin(ctx.store.manifest, app, unpin, now)
    if (!next) throw new HttpError(404, 'ROOKERY_NOT_PINNED', `${'host' in unpin ? `host ${unpin.host}` : `group ${unpin.group}`} is not pinned for ${app}`)
    await ctx.store.update((m) => ({ manifest: removePin(m, app, unpin, now) ?? m, removed: [] }))
  }
  ctx.log.info({ app, verb, ...body }, `${verb} applied`)
  const entry = ctx.store.manifest.apps[app]!
  sendJson(res, 200, { app, current: entry.current, rollout: entry.rollout ?? null, pins: entry.pins ?? [] })
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
}

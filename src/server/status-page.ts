import type { ServerResponse } from 'node:http'

/** `GET /status`: a small page showing /api/v1/status, refreshed every 2 s; readable on a phone. */
export function serveStatusPage(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(PAGE), 'Cache-Control': 'no-cache' })
  res.end(PAGE)
}

// One self-contained document: no build step, no external assets (hosts may have no internet).
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rookery status</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1b1f24; background: #f6f7f9; }
  body { margin: 0 auto; padding: 12px; max-width: 860px; }
  h1 { font-size: 1.3rem; margin: 4px 0 12px; }
  .app { background: #fff; border-radius: 10px; padding: 12px 14px; margin-bottom: 14px; box-shadow: 0 1px 3px #0002; }
  .app h2 { font-size: 1.1rem; margin: 0 0 6px; display: flex; justify-content: space-between; gap: 8px; flex-wrap: wrap; }
  .badge { font-size: .8rem; padding: 2px 8px; border-radius: 99px; color: #fff; }
  .complete { background: #1f883d; } .rolling { background: #bf8700; } .failing { background: #cf222e; }
  .meta { color: #57606a; font-size: .9rem; margin-bottom: 8px; }
  .bar { display: flex; height: 14px; border-radius: 7px; overflow: hidden; background: #eaeef2; margin: 6px 0 4px; }
  .bar span { display: block; height: 100%; }
  .s-activated { background: #1f883d; } .s-in_progress { background: #bf8700; } .s-failed { background: #cf222e; } .s-stale { background: #8c959f; }
  .legend { font-size: .85rem; display: flex; gap: 12px; flex-wrap: wrap; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
  table { width: 100%; border-collapse: collapse; font-size: .85rem; margin-top: 8px; }
  td, th { text-align: left; padding: 4px 6px; border-top: 1px solid #eaeef2; vertical-align: top; }
  td:first-child { white-space: nowrap; }
  progress { width: 90px; }
  pre { margin: 4px 0 0; white-space: pre-wrap; font-size: .75rem; color: #57606a; }
  #updated { color: #57606a; font-size: .8rem; }
</style>
</head>
<body>
<h1>rookery fleet <span id="updated"></span></h1>
<div id="apps">loading…</div>
<script>
const STATES = ['activated', 'in_progress', 'failed', 'stale']
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])
function appCard(name, a) {
  const total = STATES.reduce((n, s) => n + a.counts[s], 0)
  const badge = a.counts.failed ? ['failing', a.counts.failed + ' failed'] : a.complete ? ['complete', 'complete'] : ['rolling', 'rolling out']
  const rollout = a.rollout ? ' · rollout <b>' + esc(a.rollout.tag) + '</b> to ' + [a.rollout.percent !== undefined ? a.rollout.percent + '%' : '', ...(a.rollout.groups || [])].filter(Boolean).map(esc).join(', ') : ''
  const pins = a.pins.length ? ' · pinned: ' + a.pins.map((p) => esc(p.host || 'group ' + p.group) + '→' + esc(p.tag)).join(', ') : ''
  const bar = STATES.map((s) => '<span class="s-' + s + '" style="width:' + (total ? (100 * a.counts[s]) / total : 0) + '%"></span>').join('')
  const legend = STATES.map((s) => '<span><i class="s-' + s + '"></i>' + s.replace('_', ' ') + ' ' + a.counts[s] + '</span>').join('')
  const rows = a.hosts.filter((h) => h.state !== 'activated').map((h) => {
    const progress = h.progress && h.progress.total ? ' <progress max="' + h.progress.total + '" value="' + h.progress.done + '"></progress> ' + Math.floor((100 * h.progress.done) / h.progress.total) + '%' : ''
    const detail = h.state === 'failed' ? esc(h.error) + (h.hook_tail ? '<pre>' + h.hook_tail.map(esc).join('\\n') + '</pre>' : '') : h.state === 'stale' ? 'last seen ' + esc(h.last_seen) : esc(h.phase) + progress
    return '<tr><td>' + esc(h.host) + '</td><td class="s-txt">' + h.state.replace('_', ' ') + '</td><td>' + esc(h.current || '–') + ' → ' + esc(h.desired || '–') + '</td><td>' + detail + '</td></tr>'
  }).join('')
  return '<section class="app" data-app="' + esc(name) + '"><h2><span>' + esc(name) + '</span><span class="badge ' + badge[0] + '">' + badge[1] + '</span></h2>' +
    '<div class="meta">current <b>' + esc(a.current || '–') + '</b>' + rollout + pins + ' · ' + total + ' hosts</div>' +
    '<div class="bar">' + bar + '</div><div class="legend">' + legend + '</div>' +
    (rows ? '<table><tr><th>host</th><th>state</th><th>tag</th><th>detail</th></tr>' + rows + '</table>' : '') + '</section>'
}
async function refresh() {
  try {
    const res = await fetch('api/v1/status', { cache: 'no-store' })
    const status = await res.json()
    const apps = Object.entries(status.apps)
    document.getElementById('apps').innerHTML = apps.length ? apps.map(([n, a]) => appCard(n, a)).join('') : 'no apps published yet'
    document.getElementById('updated').textContent = 'updated ' + new Date(status.generated_at).toLocaleTimeString()
  } catch (err) {
    document.getElementById('updated').textContent = 'server unreachable, retrying'
  }
}
refresh()
setInterval(refresh, 2000)
</script>
</body>
</html>
`

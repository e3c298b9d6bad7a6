import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { chromium } from 'playwright-core'
import { publishRelease, startServerProcess } from '../helpers/fleet.ts'

// The server's /status page in headless Chromium (Debian's), at a phone's size: it shows the rollout
// from agents' reports and follows changes live. The screenshot goes to test-output/, not the repo.

const OUTPUT = join(import.meta.dirname, '..', '..', 'test-output')

test('the status page shows the fleet and refreshes live, on a phone-sized screen', { timeout: 120_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'rookery-page-'))
  const token = 'page-token-0123456789abcdef'
  const { server, url } = await startServerProcess(root, token)
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  try {
    await mkdir(join(root, 'build'))
    await writeFile(join(root, 'build', 'index.html'), 'v1')
    await publishRelease(url, token, join(root, 'build'), 'v1')
    await writeFile(join(root, 'build', 'index.html'), 'v2')
    await publishRelease(url, token, join(root, 'build'), 'v2', ['--group', 'canary'])
    const report = (body: object) => fetch(`${url}/api/v1/reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ app: 'web', groups: [], ...body }) })
    // Reports as agents send them: one host done, one downloading, one whose hook failed.
    assert.equal((await report({ host: 'web-01', tag: 'v1', current: 'v1', phase: 'activated' })).status, 204)
    await report({ host: 'web-02', tag: 'v1', current: null, phase: 'downloading', progress: { done: 3_000_000, total: 8_000_000 } })
    await report({ host: 'web-03', tag: 'v1', current: null, phase: 'hook_failed', error: 'post_install exited 1 (last output: migration failed)', hook_tail: ['running migrations', 'migration failed'] })

    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 })
    await page.goto(`${url}/status`)
    await page.waitForSelector('section.app[data-app="web"]')
    const card = page.locator('section.app[data-app="web"]')
    const text = await card.innerText()
    assert.match(text, /current v1/)
    assert.match(text, /rollout v2 to canary/)
    assert.match(text, /activated 1/)
    assert.match(text, /in progress 1/)
    assert.match(text, /failed 1/)
    assert.match(text, /web-02[\s\S]*downloading[\s\S]*37%/)
    assert.match(text, /migration failed/)
    // Nothing wider than the phone's screen.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'the page scrolls sideways on a phone')
    await mkdir(OUTPUT, { recursive: true })
    await page.screenshot({ path: join(OUTPUT, 'status-page.png'), fullPage: true })

    // Live: a new report shows up without reloading.
    await report({ host: 'web-02', tag: 'v1', current: 'v1', phase: 'activated' })
    await page.waitForFunction(() => document.querySelector('section.app[data-app="web"]')?.textContent?.includes('activated 2'), undefined, { timeout: 10_000 })
  } finally {
    await browser.close()
    await server.stop()
    await rm(root, { recursive: true, force: true })
  }
})

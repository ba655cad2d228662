// Opens a running ComfyUI in headless Chromium (Debian's, through playwright-core) and checks
// what the DiT Cache extension shows. Called by test_graph_editor.py:
//   node check_graph_editor.mjs <server url> <workflows.json> <screenshot dir>
// workflows.json: {"report": <UI workflow with a caching node>, "profiler": <one with the Block
// Profiler, calibrating>, "dit_cache": <one with the DiT Cache node>, "quality": <one with Cache
// Quality Check>, "foreign" and "two_samplers": {ui, api} (the report workflow renumbered, the second
// with a second sampler on the caching node)}, loaders already swapped for tiny models. The plain graph is ComfyUI's default one.
// Prints one JSON object of findings; the Python test asserts on it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, workflowsPath, screenshotDir] = process.argv.slice(2);
const workflows = JSON.parse(readFileSync(workflowsPath, "utf8"));
const RUN_TIMEOUT = 240_000;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const findings = { console_errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1700, height: 1000 } });
  page.on("pageerror", (err) => findings.console_errors.push(String(err)));
  await page.goto(url);
  await page.waitForFunction(() => window.app?.graph && window.app.extensionManager, null, { timeout: 120_000 });
  // A first visit opens the template browser, where the pack's workflows are listed (a PrimeVue
  // dialog up to frontend 1.45, a role=dialog element of another library in 1.49).
  const templates = page.locator(".p-dialog, [role=dialog]").filter({ hasText: "comfyui-dit-cache" });
  findings.templates_listed = await templates.waitFor({ timeout: 20_000 }).then(() => true, () => false);
  if (findings.templates_listed) {
    await page.screenshot({ path: join(screenshotDir, "graph_editor_templates.png") });
    // Escape closes the dialog on every frontend; the close button's markup differs between them.
    await page.keyboard.press("Escape");
    const closed = await templates.waitFor({ state: "hidden", timeout: 5_000 }).then(() => true, () => false);
    if (!closed) {
      await templates.locator("button[aria-label='Close'], .p-dialog-close-button, button.absolute.right-6")
        .first().click();
      await templates.waitFor({ state: "hidden", timeout: 10_000 });
    }
  }
  findings.extension_registered = await page.evaluate(
    () => window.app.extensions.some((e) => e.name === "dit_cache.reports"));

  // loadGraphData() with no workflow loads ComfyUI's default graph (no DiT Cache node in it).
  const load = (workflow) => page.evaluate(async (w) => {
    await window.app.loadGraphData(w ?? undefined);
    window.app.canvas.ds.offset = [70, 150];   // clear of the menu bar, for the screenshots
    window.app.canvas.setDirty(true, true);
  }, workflow ?? null);
  const queue = () => page.evaluate(async () => { await window.app.queuePrompt(0, 1); });
  const packElements = () => page.evaluate(() => document.querySelectorAll("[class*='dit-cache']").length);
  // The elements matching `selector` on the pack's widget of node `id`: their text, whether they
  // are drawn (a box, not hidden) and whether that box lies within the node's on the canvas.
  const shownOnNode = (id, selector) => page.evaluate(([id, selector]) => {
    const node = window.app.graph.getNodeById(Number(id));
    const element = node?.widgets?.find((w) => w.name === "dit_cache_report")?.element;
    const canvas = window.app.canvas, box = canvas.canvas.getBoundingClientRect();
    const { offset, scale } = canvas.ds;
    const left = box.left + (node.pos[0] + offset[0]) * scale, top = box.top + (node.pos[1] + offset[1]) * scale;
    const [right, bottom] = [left + node.size[0] * scale, top + node.size[1] * scale];
    return [...(element?.querySelectorAll(selector) ?? [])].map((e) => {
      const r = e.getBoundingClientRect();
      return { text: e.textContent, drawn: r.width > 0 && r.height > 0 && e.checkVisibility(),
               inside: r.left >= left - 1 && r.right <= right + 1 && r.top >= top - 1 && r.bottom <= bottom + 1 };
    });
  }, [id, selector]);

  // 1. A graph without the pack's nodes: nothing of the pack on the page.
  await load(null);
  findings.plain_elements_before = await packElements();

  // 2. A caching node shows its report after a run, and loses it when a setting changes.
  await load(workflows.report);
  await queue();
  const line = await page.waitForSelector(".dit-cache-report-line", { timeout: RUN_TIMEOUT });
  findings.report_text = await line.textContent();
  findings.report_visible = await line.isVisible();
  findings.report_notes_shown = await page.evaluate(() => document.querySelectorAll(".dit-cache-report-note").length);
  await page.screenshot({ path: join(screenshotDir, "graph_editor_report.png") });
  await page.evaluate(() => {
    const node = window.app.graph.nodes.find((n) => n.comfyClass === "DiTCacheTeaCacheThreshold");
    const widget = node.widgets.find((w) => typeof w.value === "number");
    // the path the canvas takes when the user edits the widget
    widget.setValue(widget.value + 0.01, { e: new PointerEvent("pointerup"), node, canvas: window.app.canvas });
  });
  findings.report_cleared = await page
    .waitForFunction(() => document.querySelectorAll(".dit-cache-report-line").length === 0, null, { timeout: 10_000 })
    .then(() => true, () => false);

  // 2b. A second browser with the same workflow open: the report of a run the first one queued
  // goes to the first one only (another tab, or another user of a shared server, sees nothing).
  const other = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  other.on("pageerror", (err) => findings.console_errors.push(String(err)));
  await other.goto(url);
  await other.waitForFunction(() => window.app?.graph && window.app.extensionManager, null, { timeout: 120_000 });
  await other.evaluate(async (w) => { await window.app.loadGraphData(w); }, workflows.report);
  await other.waitForTimeout(3_000);   // its websocket is open before the run is queued
  await queue();
  findings.first_tab_report_again = await page
    .waitForSelector(".dit-cache-report-line", { timeout: RUN_TIMEOUT }).then(() => true, () => false);
  await other.waitForTimeout(3_000);
  findings.second_tab_report_lines = await other.evaluate(
    () => document.querySelectorAll(".dit-cache-report-line").length);
  await other.close();

  // 2c. The caching node moved into a subgraph (the editor's own conversion): its report, sent
  // for execution id "<subgraph node>:<node>", reaches it there.
  await load(workflows.report);
  findings.subgraph_execution_prefix = await page.evaluate(() => {
    const graph = window.app.graph;
    const node = graph.nodes.find((n) => n.comfyClass === "DiTCacheTeaCacheThreshold");
    return graph.convertToSubgraph(new Set([node])).node.id;
  });
  await queue();
  findings.subgraph_report = await page.waitForFunction(() => {
    const holder = window.app.graph.nodes.find((n) => n.subgraph);
    const inner = holder?.subgraph.nodes.find((n) => n.comfyClass === "DiTCacheTeaCacheThreshold");
    return inner?.widgets?.find((w) => w.name === "dit_cache_report")?.element?.textContent || null;
  }, null, { timeout: RUN_TIMEOUT }).then((handle) => handle.jsonValue(), () => null);

  // Every report, progress and progress text event this page receives from here on (the api the
  // frontend and the extension listen on): the node, and what the event says of it.
  await page.evaluate(async () => {
    const { api } = await import("/scripts/api.js");
    window.ditCacheSeen = { reports: [], progress: [], texts: [] };
    api.addEventListener("dit_cache.report", ({ detail }) => window.ditCacheSeen.reports.push(
      { node: String(detail.node), settings: detail.report.settings, notes: detail.report.notes }));
    api.addEventListener("progress", ({ detail }) => window.ditCacheSeen.progress.push(
      { node: String(detail.node), value: detail.value, max: detail.max }));
    // the server's send_progress_text: a binary message every one of these frontends (1.32 to 1.49)
    // turns into a "progress_text" event with the node's id
    api.addEventListener("progress_text", ({ detail }) => window.ditCacheSeen.texts.push(
      { node: String(detail.nodeId), text: detail.text }));
  });
  const seen = () => page.evaluate(() => window.ditCacheSeen);
  const forget = () => page.evaluate(() => { for (const list of Object.values(window.ditCacheSeen)) list.length = 0; });
  const nodeOf = (comfyClass) => page.evaluate((c) => String(window.app.graph.nodes.find((n) => n.comfyClass === c)?.id), comfyClass);

  // 3. The Block Profiler shows its report and heatmap; while it calibrates, one progress bar on
  // its node (ComfyUI's ProgressBar: value of max) and a line of progress text.
  await load(workflows.profiler);
  const profiler = await nodeOf("DiTCacheBlockProfiler");
  await forget();
  await queue();
  // the calibration under way: the bar past a third when the screenshot starts, below 90% when it ends
  const progressNow = () => page.evaluate((id) => {
    const own = window.ditCacheSeen.progress.filter((p) => p.node === id);
    return own.length ? own[own.length - 1].value / own[own.length - 1].max : null;
  }, profiler);
  findings.calibration_in_flight = await page.waitForFunction((id) => {
    const own = window.ditCacheSeen.progress.filter((p) => p.node === id);
    const last = own[own.length - 1];
    return last && last.value >= 0.35 * last.max && last.value <= 0.9 * last.max;
  }, profiler, { timeout: RUN_TIMEOUT, polling: 10 }).then(() => true, () => false);
  if (findings.calibration_in_flight) {
    const before = await progressNow();
    await page.screenshot({ path: join(screenshotDir, "graph_editor_calibration_progress.png") });
    findings.calibration_screenshot_progress = [before, await progressNow()];
    // what the node shows of the progress text (the frontend's text preview widget), mid-flight
    findings.calibration_text_on_node = await page.evaluate((id) => window.app.graph.getNodeById(Number(id))
      ?.widgets?.find((w) => w.name === "$$node-text-preview")?.value ?? null, profiler);
  }
  const heatmap = await page.waitForSelector(".dit-cache-heatmap", { timeout: RUN_TIMEOUT });
  await page.waitForFunction(() => document.querySelector(".dit-cache-heatmap")?.naturalWidth > 0,
                             null, { timeout: 30_000 });
  findings.heatmap_size = await heatmap.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  findings.heatmap_shown_width = await heatmap.evaluate((img) => img.getBoundingClientRect().width);
  findings.profiler_report_text = await page.textContent(".dit-cache-report-line");
  await page.screenshot({ path: join(screenshotDir, "graph_editor_profiler.png") });
  const profilerSeen = await seen();
  findings.calibration_progress = profilerSeen.progress.filter((p) => p.node === profiler);
  findings.calibration_texts = profilerSeen.texts.filter((t) => t.node === profiler).map((t) => t.text);

  // 3b. The DiT Cache node: its report line, whose tooltip names the method and setting it chose,
  // and under it the report's note of what that is and why.
  await load(workflows.dit_cache);
  const ditCache = await nodeOf("DiTCacheSpeed");
  await forget();
  await queue();
  const ditCacheLine = await page.waitForSelector(".dit-cache-report-line", { timeout: RUN_TIMEOUT });
  findings.dit_cache_report_text = await ditCacheLine.textContent();
  findings.dit_cache_report_title = await ditCacheLine.getAttribute("title");
  findings.dit_cache_report_visible = await ditCacheLine.isVisible();
  findings.dit_cache_report_events = (await seen()).reports.filter((r) => r.node === ditCache);
  findings.dit_cache_note_on_node = await shownOnNode(ditCache, ".dit-cache-report-note");
  await page.screenshot({ path: join(screenshotDir, "graph_editor_dit_cache.png") });

  // 3c. Cache Quality Check: its PSNR / SSIM summary (ui text) and its difference image in the
  // preview node the workflow feeds.
  await load(workflows.quality);
  const [check, preview] = [await nodeOf("DiTCacheQualityCheck"), await nodeOf("PreviewImage")];
  await page.evaluate(async (ids) => {
    const { api } = await import("/scripts/api.js");
    window.ditCacheExecuted = {};
    api.addEventListener("executed", ({ detail }) => {
      if (ids.includes(String(detail.node))) window.ditCacheExecuted[String(detail.node)] = detail.output;
    });
  }, [check, preview]);
  await queue();
  findings.quality_outputs = await page.waitForFunction(([c, p]) => {
    const out = window.ditCacheExecuted;
    return out[c] && out[p] ? { check: out[c], preview: out[p] } : null;
  }, [check, preview], { timeout: RUN_TIMEOUT }).then((handle) => handle.jsonValue(), () => null);
  findings.quality_preview_image_width = await page.waitForFunction((id) => {
    const image = window.app.graph.getNodeById(Number(id))?.imgs?.[0];
    return image?.complete && image.naturalWidth > 0 ? image.naturalWidth : null;
  }, preview, { timeout: 30_000 }).then((handle) => handle.jsonValue(), () => null);
  // the screenshot: the check and the preview on the right of the graph, in view
  await page.evaluate((id) => {
    const ds = window.app.canvas.ds, node = window.app.graph.getNodeById(Number(id));
    ds.offset[0] = Math.min(ds.offset[0], 1650 / ds.scale - (node.pos[0] + node.size[0]));
    window.app.canvas.setDirty(true, true);
  }, preview);
  await page.waitForTimeout(500);   // the canvas draws the preview
  // the summary on the check's node
  findings.quality_summary_on_node = await shownOnNode(check, ".dit-cache-text");
  await page.screenshot({ path: join(screenshotDir, "graph_editor_quality_check.png") });
  // an image input disconnected (what the canvas does when the user drags its link away): the
  // summary no longer describes the node's inputs, and goes
  await page.evaluate((id) => window.app.graph.getNodeById(Number(id)).disconnectInput(1), check);
  findings.quality_summary_after_disconnect = await shownOnNode(check, ".dit-cache-text");

  // 5. On a page of its own, with workflows whose node ids no earlier case used (the editor keeps
  // what earlier cases did to a workflow, the subgraph of 2c among them), two prompts built from
  // them (workflows.json holds each as the API prompt too):
  const fresh = await browser.newPage({ viewport: { width: 1700, height: 1000 } });
  fresh.on("pageerror", (err) => findings.console_errors.push(String(err)));
  await fresh.goto(url);
  await fresh.waitForFunction(() => window.app?.graph && window.app.extensionManager, null, { timeout: 120_000 });
  await fresh.keyboard.press("Escape");   // the template browser of a first visit
  // every report event the page receives, whatever the extension makes of it
  await fresh.evaluate(async () => {
    const { api } = await import("/scripts/api.js");
    window.ditCacheEvents = [];
    api.addEventListener("dit_cache.report", ({ detail }) => window.ditCacheEvents.push(
      { node: detail.node, prompt_id: detail.prompt_id, full: detail.report.full_steps }));
  });
  const events = () => fresh.evaluate(() => window.ditCacheEvents);
  const lines = () => fresh.evaluate(() => [...document.querySelectorAll(".dit-cache-report-line")].map((l) => l.textContent));
  await fresh.waitForTimeout(3_000);   // its websocket is open before anything is queued

  // 5a. A prompt queued over HTTP without a client id (a script, another tool): the server sends
  // its report to every browser; this page, which did not queue it, shows nothing.
  await fresh.evaluate(async (w) => { await window.app.loadGraphData(w); }, workflows.foreign.ui);
  const foreign = await fresh.evaluate(async (prompt) => {
    const answer = await fetch("/prompt", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify({ prompt }) });
    return (await answer.json()).prompt_id;
  }, workflows.foreign.api);
  findings.foreign_prompt_finished = false;
  for (let waited = 0; waited < RUN_TIMEOUT && !findings.foreign_prompt_finished; waited += 1_000) {
    await fresh.waitForTimeout(1_000);
    findings.foreign_prompt_finished = await fresh.evaluate(async (id) => {
      const history = await (await fetch(`/history/${id}`)).json();
      return Boolean(history[id]?.status?.completed);
    }, foreign);
  }
  await fresh.waitForTimeout(1_000);
  findings.foreign_prompt_report_events = (await events()).filter((e) => e.prompt_id === foreign).length;
  findings.foreign_prompt_report_lines = (await lines()).length;

  // 5b. One caching node feeding two samplers, queued by this page: both runs' reports on the
  // node, one line each.
  await fresh.evaluate(async (w) => {
    const { api } = await import("/scripts/api.js");   // the api the extension listens on
    await window.app.loadGraphData(w.ui);
    await api.queuePrompt(0, { output: w.api, workflow: w.ui });
  }, workflows.two_samplers);
  findings.two_sampler_lines = await fresh.waitForFunction(() => {
    const shown = [...document.querySelectorAll(".dit-cache-report-line")].map((l) => l.textContent);
    return shown.length === 2 ? shown : null;
  }, null, { timeout: RUN_TIMEOUT }).then((handle) => handle.jsonValue(),
                                            async () => ({ lines_seen: await lines(), events: await events() }));
  await fresh.close();

  // 4. Back to the plain graph: the pack's elements go with its nodes.
  await load(null);
  findings.plain_elements_after = await packElements();
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));

// DiT Cache: shows on each caching node the run reports of its last prompt (one line per sampling
// run: a node feeding two samplers shows both), and the Block Profiler's heatmap. The server sends
// "dit_cache.report" after every sampling run to the browser that queued it, with {node: <execution
// id>, prompt_id, report: {...}} (nodes/apply.py); a prompt queued without a client id reaches every
// browser, so a report is shown only for a prompt this page queued. Nothing is added to a node, or
// to the page, until a report for it arrives; the reports are cleared when one of the node's
// settings changes.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const REPORT_EVENT = "dit_cache.report";
// Every node of the pack sits in this category (nodes/common_inputs.py): that, not a list of node
// types, is how a node of the pack is recognised, so a new node needs nothing here.
const CATEGORY = "sampling/dit_cache";
const packTypes = new Set();
const WIDGET_NAME = "dit_cache_report";
// The profiler's heatmap is drawn 828 px wide with 18-22 px text; at 500 px on the node its text
// stays about 12 px high.
const HEATMAP_HEIGHT = 300;
const HEATMAP_NODE_WIDTH = 500;
// The ids of the prompts this page queued (the server's answer to each queue request).
const ownPrompts = new Set();

/** "10/28 full · est. 2.6x · cache 340 MB" ("blocks 143/252" too under a per-block schedule), plus
 * fallbacks and interruption when there are any. */
export function reportLine(report) {
  const parts = [`${report.full_steps}/${report.steps} full`];
  if (report.blocks_scheduled_alone) parts.push(`blocks ${report.blocks_computed}/${report.block_evaluations}`);
  parts.push(`est. ${report.estimated_speedup.toFixed(1)}x`);
  const mb = report.cache_peak_bytes / 2 ** 20;
  if (mb > 0) parts.push(`cache ${mb < 10 ? mb.toFixed(1) : Math.round(mb)} MB`);
  if (report.fallbacks > 0) parts.push(`${report.fallbacks} fallbacks`);
  if (report.failure) parts.push(`failed: ${report.failure}`);
  else if (report.interrupted) parts.push("interrupted");
  return parts.join(" · ");
}

/** The node an execution id names: "12" in the root graph, "12:5" node 5 inside subgraph node 12. */
export function nodeForExecutionId(graph, executionId) {
  let node = null;
  for (const id of String(executionId).split(":")) {
    const scope = node ? node.subgraph : graph;
    node = scope?.getNodeById?.(Number(id)) ?? null;
    if (!node) return null;
  }
  return node;
}

function heatmapUrl(image) {
  const query = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder, type: image.type });
  return api.apiURL(`/view?${query}&rand=${Math.random()}`);
}

function reportElement(node) {
  let widget = node.widgets?.find((w) => w.name === WIDGET_NAME);
  if (!widget) {
    const element = document.createElement("div");
    element.className = "dit-cache-report";
    element.style.cssText = "font: 12px monospace; color: var(--input-text, #ddd); padding: 2px 4px; white-space: pre-wrap;";
    // the graph editor sizes the node from this height: its text lines, plus the heatmap if any
    const height = () => 4 + 18 * Math.max(1, element.querySelectorAll(".dit-cache-report-line").length)
      + (element.querySelector("img") ? HEATMAP_HEIGHT + 4 : 0);
    widget = node.addDOMWidget(WIDGET_NAME, "dit_cache_report", element, {
      serialize: false, getMinHeight: height, getMaxHeight: height,
    });
  }
  return widget.element;
}

/** The reports a node shows once `detail` arrives: added to those of the same prompt, else alone. */
export function nextReports(shown, detail) {
  if (shown && shown.promptId === detail.prompt_id) return { promptId: detail.prompt_id, reports: [...shown.reports, detail.report] };
  return { promptId: detail.prompt_id, reports: [detail.report] };
}

function showReports(node, detail) {
  node.ditCacheReports = nextReports(node.ditCacheReports, detail);
  const { reports } = node.ditCacheReports;
  const element = reportElement(node);
  element.replaceChildren();
  reports.forEach((report, index) => {
    const line = document.createElement("div");
    line.className = "dit-cache-report-line";
    line.textContent = (reports.length > 1 ? `run ${index + 1}: ` : "") + reportLine(report);
    line.title = `${report.method} (${report.settings}): ${report.summary}`;
    element.append(line);
  });
  const heatmap = reports.findLast((r) => r.heatmap)?.heatmap;
  if (heatmap) {
    const image = document.createElement("img");
    image.className = "dit-cache-heatmap";
    image.alt = "Block Profiler heatmap: steps (rows) x blocks (columns), brighter = more change";
    image.style.cssText = `display: block; width: 100%; height: ${HEATMAP_HEIGHT}px; object-fit: contain; image-rendering: pixelated; margin-top: 4px;`;
    image.src = heatmapUrl(heatmap);
    element.append(image);
  }
  const width = heatmap ? Math.max(node.size[0], HEATMAP_NODE_WIDTH) : node.size[0];
  node.setSize([width, Math.max(node.size[1], node.computeSize()[1])]);
  app.graph.setDirtyCanvas(true, true);
}

function clearReport(node) {
  node.ditCacheReports = null;
  const widget = node.widgets?.find((w) => w.name === WIDGET_NAME);
  if (!widget) return;
  widget.element.replaceChildren();
  if (node.removeWidget) {
    node.removeWidget(widget);
  } else {
    node.widgets.splice(node.widgets.indexOf(widget), 1);
    widget.onRemove?.();
  }
  node.setSize(node.computeSize());
  app.graph.setDirtyCanvas(true, true);
}

app.registerExtension({
  name: "dit_cache.reports",

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.category?.startsWith(CATEGORY)) return;
    packTypes.add(nodeData.name);
    // The graph editor calls onWidgetChanged whenever the user edits a widget: the last report no
    // longer describes these settings.
    const onWidgetChanged = nodeType.prototype.onWidgetChanged;
    nodeType.prototype.onWidgetChanged = function (name, ...rest) {
      if (name !== WIDGET_NAME) clearReport(this);
      return onWidgetChanged?.call(this, name, ...rest);
    };
  },

  async setup() {
    const queuePrompt = api.queuePrompt.bind(api);
    api.queuePrompt = async (...args) => {
      const answer = await queuePrompt(...args);
      if (answer?.prompt_id) ownPrompts.add(answer.prompt_id);
      return answer;
    };
    api.addEventListener(REPORT_EVENT, ({ detail }) => {
      if (!ownPrompts.has(detail.prompt_id)) return;
      const node = nodeForExecutionId(app.rootGraph ?? app.graph, detail.node);
      if (node && packTypes.has(node.comfyClass)) showReports(node, detail);
    });
  },
});

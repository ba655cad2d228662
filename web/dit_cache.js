// DiT Cache: shows on each caching node the run reports of its last prompt (one line per sampling
// run: a node feeding two samplers shows both), the Block Profiler's heatmap, on DiT Cache what its
// speed ran and why, and the text a node of the pack sends as its output (Cache Quality Check's PSNR
// / SSIM summary, which the graph editor shows only for its own nodes). The server sends
// "dit_cache.report" after every sampling run to the browser that queued it, with {node: <execution
// id>, prompt_id, report: {...}} (nodes/apply.py), and "executed" with the node's ui output; a
// prompt queued without a client id reaches every browser, so both are shown only for a prompt this
// page queued. Nothing is added to a node, or to the page, until one arrives for it; all of it is
// cleared when one of the node's settings changes, and the text output also when an input is
// connected or disconnected.
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
// Every line of text on the node: its font and the height of one line (a long one wraps to several).
const FONT = "12px monospace";
const LINE_HEIGHT = 16;
const PADDING = [2, 4];   // the element's, px: top and bottom, left and right
// The side onConnectionsChange names for an input (LiteGraph's NodeSlotType.INPUT, in every frontend).
const INPUT_SIDE = 1;
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

/** The report's note in which a node with a named speed says what that speed ran and why
 * ("Balanced runs FORA interval 3: the best per-prompt PSNR ..."; nodes/speed.py), or null. The
 * report's other notes are what a guard or fallback wrote; the line's fallback count stands for them. */
export function choiceNote(report, speed) {
  if (typeof speed !== "string") return null;
  const opening = `${speed.split(" (")[0]} runs `;
  return report.notes?.find((note) => note.startsWith(opening)) ?? null;
}

/** How many lines `text` takes in `width` px, `measure(s)` the width of `s`: wrapped at spaces as
 * the page wraps it, a word wider than a line broken where it fills one (overflow-wrap: anywhere). */
export function wrappedLineCount(text, width, measure) {
  let lines = 0;
  for (const paragraph of String(text).split("\n")) {
    let line = "";
    lines += 1;
    for (const word of paragraph.split(" ")) {
      const longer = line ? `${line} ${word}` : word;
      if (measure(longer) <= width) {
        line = longer;
        continue;
      }
      if (line) lines += 1;
      line = word;
      while (line.length > 1 && measure(line) > width) {
        let fits = 1;
        while (fits < line.length - 1 && measure(line.slice(0, fits + 1)) <= width) fits += 1;
        line = line.slice(fits);
        lines += 1;
      }
    }
  }
  return lines;
}

let measuring = null;
function textWidth(text) {
  measuring ??= document.createElement("canvas").getContext("2d");
  measuring.font = FONT;
  return measuring.measureText(text).width;
}

function heatmapUrl(image) {
  const query = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder, type: image.type });
  return api.apiURL(`/view?${query}&rand=${Math.random()}`);
}

function reportWidget(node) {
  return node.widgets?.find((w) => w.name === WIDGET_NAME) ?? null;
}

function reportElement(node) {
  let widget = reportWidget(node);
  if (!widget) {
    const element = document.createElement("div");
    element.className = "dit-cache-report";
    element.style.cssText = `font: ${FONT}; line-height: ${LINE_HEIGHT}px; color: var(--input-text, #ddd); `
      + `padding: ${PADDING[0]}px ${PADDING[1]}px; white-space: pre-wrap; overflow-wrap: anywhere;`;
    // The graph editor sizes the node from this height: its lines of text as they wrap at the
    // node's width now (asked again when the node is resized), plus the heatmap if any. The
    // element sits a margin below the widget's top.
    const height = () => {
      const margin = widget.margin ?? 10;
      const width = node.size[0] - 2 * margin - 2 * PADDING[1];
      const texts = [...element.children].filter((child) => child.tagName !== "IMG");
      const lines = texts.reduce((sum, child) => sum + wrappedLineCount(child.textContent, width, textWidth), 0);
      return margin + 2 * PADDING[0] + LINE_HEIGHT * lines + (element.querySelector("img") ? HEATMAP_HEIGHT + 4 : 0);
    };
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

function textLine(className, text, style = "") {
  const line = document.createElement("div");
  line.className = className;
  line.textContent = text;
  line.style.cssText = style;
  return line;
}

/** Draws what the node has to show (node.ditCacheReports, node.ditCacheTexts); with nothing, no widget. */
function render(node) {
  const reports = node.ditCacheReports?.reports ?? [];
  const texts = node.ditCacheTexts ?? [];
  if (!reports.length && !texts.length) {
    removeReportWidget(node);
    return;
  }
  const element = reportElement(node);
  element.replaceChildren();
  reports.forEach((report, index) => {
    const line = textLine("dit-cache-report-line", (reports.length > 1 ? `run ${index + 1}: ` : "") + reportLine(report));
    line.title = `${report.method} (${report.settings}): ${report.summary}`;
    element.append(line);
  });
  // DiT Cache: what its speed ran and why, once however many samplers it fed
  const speed = node.widgets?.find((w) => w.name === "speed")?.value;
  for (const note of new Set(reports.map((report) => choiceNote(report, speed)).filter(Boolean))) {
    element.append(textLine("dit-cache-report-note", note, "color: var(--descrip-text, #aaa);"));
  }
  for (const text of texts) element.append(textLine("dit-cache-text", text));
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

function removeReportWidget(node) {
  const widget = reportWidget(node);
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

function showReports(node, detail) {
  node.ditCacheReports = nextReports(node.ditCacheReports, detail);
  render(node);
}

app.registerExtension({
  name: "dit_cache.reports",

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.category?.startsWith(CATEGORY)) return;
    packTypes.add(nodeData.name);
    // The graph editor calls onWidgetChanged whenever the user edits a widget: what the node shows
    // no longer describes these settings.
    const onWidgetChanged = nodeType.prototype.onWidgetChanged;
    nodeType.prototype.onWidgetChanged = function (name, ...rest) {
      if (name !== WIDGET_NAME) {
        this.ditCacheReports = null;
        this.ditCacheTexts = null;
        render(this);
      }
      return onWidgetChanged?.call(this, name, ...rest);
    };
    // An input connected or disconnected: a text output (the summary of two images) no longer
    // describes what the node is given.
    const onConnectionsChange = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function (side, ...rest) {
      if (side === INPUT_SIDE && this.ditCacheTexts) {
        this.ditCacheTexts = null;
        render(this);
      }
      return onConnectionsChange?.call(this, side, ...rest);
    };
  },

  async setup() {
    const queuePrompt = api.queuePrompt.bind(api);
    api.queuePrompt = async (...args) => {
      const answer = await queuePrompt(...args);
      if (answer?.prompt_id) ownPrompts.add(answer.prompt_id);
      return answer;
    };
    const ownPackNode = (detail, executionId) => {
      if (!ownPrompts.has(detail.prompt_id)) return null;
      const node = nodeForExecutionId(app.rootGraph ?? app.graph, executionId);
      return node && packTypes.has(node.comfyClass) ? node : null;
    };
    api.addEventListener(REPORT_EVENT, ({ detail }) => {
      const node = ownPackNode(detail, detail.node);
      if (node) showReports(node, detail);
    });
    // A node's ui text ({"text": [...]}: Cache Quality Check's summary), which the graph editor
    // shows only for its own nodes.
    api.addEventListener("executed", ({ detail }) => {
      const texts = detail.output?.text;
      if (!Array.isArray(texts)) return;
      const node = ownPackNode(detail, detail.display_node ?? detail.node);
      if (!node) return;
      node.ditCacheTexts = texts.filter((text) => typeof text === "string");
      render(node);
    });
  },
});

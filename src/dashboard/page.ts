// The dashboard's one HTML page: layout, styles, and an import map that points "uplot" at the copy the server
// sends from node_modules. The behaviour lives in web/app.ts.

const CSS = `
:root { --fg: #1d2433; --muted: #6b7385; --line: #dde1e8; --bg: #f6f7f9; --card: #fff; --accent: #2f6fdf;
  --good: #1e8e3e; --bad: #c5221f; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 14px; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 12px; padding: 10px 16px; background: #1d2433; color: #fff; }
header h1 { font-size: 16px; margin: 0; }
header .root { color: #aab3c5; font-family: ui-monospace, monospace; font-size: 12px; }
#layout { display: grid; grid-template-columns: 300px 1fr; min-height: calc(100vh - 40px); }
#runs { border-right: 1px solid var(--line); background: var(--card); padding: 8px 0; overflow: auto; }
#runs .run { display: block; padding: 6px 14px; color: inherit; text-decoration: none; border-left: 3px solid transparent; }
#runs .run:hover { background: #eef2fb; }
#runs .run.selected { border-left-color: var(--accent); background: #e6eefc; }
#runs .run.child { padding-left: 30px; }
#runs .run .meta { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px; background: #e8eaef; color: var(--muted); margin-left: 4px; }
.badge.live { background: #e3f5e8; color: var(--good); }
main { padding: 14px 18px; overflow: auto; }
main h2 { margin: 0 0 8px; font-size: 18px; }
.tabs { display: flex; gap: 4px; border-bottom: 1px solid var(--line); margin-bottom: 12px; }
.tabs button { border: 1px solid transparent; border-bottom: none; background: none; padding: 6px 14px; cursor: pointer;
  font: inherit; color: var(--muted); border-radius: 6px 6px 0 0; }
.tabs button.active { border-color: var(--line); background: var(--card); color: var(--fg); margin-bottom: -1px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; margin-bottom: 12px; }
.card h3 { margin: 0 0 6px; font-size: 14px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 12px; }
.chart h3 { font-family: ui-monospace, monospace; font-weight: 600; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid #eef0f3; vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.num { text-align: right; font-family: ui-monospace, monospace; }
.empty, .muted { color: var(--muted); }
.error { color: var(--bad); }
pre, .step { font-family: ui-monospace, monospace; font-size: 12.5px; white-space: pre-wrap; word-break: break-word; margin: 0; }
.pair-sides { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; margin-top: 6px; }
.side h4 { margin: 0 0 4px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.side.chosen h4 { color: var(--good); } .side.rejected h4 { color: var(--bad); }
.step { padding: 2px 6px; border-left: 3px solid transparent; }
.step.same { color: var(--muted); }
.side.chosen .step.diff-first { background: #e3f5e8; border-left-color: var(--good); }
.side.rejected .step.diff-first { background: #fdecea; border-left-color: var(--bad); }
.prompt { background: #f3f4f7; padding: 6px 8px; border-radius: 4px; }
.toolbar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-bottom: 10px; }
button.small, .toolbar button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 5px; background: #fff; cursor: pointer; }
textarea { width: 100%; font-family: ui-monospace, monospace; font-size: 12.5px; }
label { color: var(--muted); font-size: 12px; }
.heatmap { font-family: ui-monospace, monospace; font-size: 13px; line-height: 1.9; white-space: pre-wrap; word-break: break-word; }
.heatmap .tok { border-radius: 3px; padding: 1px 0; }
.heatmap .tok.prompt-tok { opacity: .45; }
.legend { display: flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted); }
.legend .bar { width: 160px; height: 10px; border-radius: 3px; background: linear-gradient(90deg, rgb(220,50,40), #fff, rgb(30,150,60)); }
`;

export function indexHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stepwise dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/vendor/uPlot.min.css">
<style>${CSS}</style>
<script type="importmap">{"imports": {"uplot": "/vendor/uPlot.esm.js"}}</script>
</head>
<body>
<header><h1>stepwise dashboard</h1><span class="root" id="root"></span></header>
<div id="layout"><nav id="runs"></nav><main id="main"><p class="empty">Pick a run on the left.</p></main></div>
<script type="module" src="/web/app.js"></script>
</body>
</html>
`;
}

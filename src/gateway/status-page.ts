/**
 * The status page's HTML (./status.ts serves it): one document, inline
 * style and script, both carrying `{{nonce}}`, which the server replaces
 * with the nonce its Content-Security-Policy names. The script polls
 * `status.json` every POLL_MS and follows the log of each running gateway
 * build over its server-sent events (protocols/build-api.md). Every value
 * is written with `textContent`: nothing from the network becomes markup.
 */

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>kiln status</title>
<style nonce="{{nonce}}">
  :root { color-scheme: light; --fg: #1d2329; --muted: #5c6670; --line: #d8dde2; --bg: #f6f7f9; --ok: #1f7a3a; --bad: #b3261e; --run: #8a5a00; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { background: #20262d; color: #fff; padding: 12px 20px; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: #b9c2cc; font-size: 12px; }
  main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; overflow: auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px 4px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; }
  code, pre, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
  .id { word-break: break-all; }
  pre { margin: 4px 0 0; padding: 6px 8px; background: #11161b; color: #d7e0e8; border-radius: 4px; max-height: 220px; overflow: auto; white-space: pre-wrap; word-break: break-all; }
  .state-succeeded { color: var(--ok); font-weight: 600; }
  .state-failed, .state-cancelled { color: var(--bad); font-weight: 600; }
  .state-queued, .state-fetching, .state-building, .state-exporting, .state-awarded { color: var(--run); font-weight: 600; }
  .empty { color: var(--muted); font-style: italic; }
  .error { color: var(--bad); }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
  dt { color: var(--muted); }
  dd { margin: 0; }
</style>
</head>
<body>
<header><h1>kiln status</h1><span class="meta" id="updated">loading…</span><span class="meta error" id="problem"></span></header>
<main>
  <section id="node"><h2>This node</h2><dl id="node-info"></dl></section>
  <section id="store"><h2>Store</h2><dl id="store-info"></dl></section>
  <section id="peers" class="wide"><h2>Peers</h2><div id="peers-body"></div></section>
  <section id="jobs" class="wide"><h2>Jobs</h2><div id="jobs-body"></div></section>
  <section id="builds" class="wide"><h2>Gateway builds</h2><div id="builds-body"></div></section>
  <section id="pulls" class="wide"><h2>Recent pulls</h2><div id="pulls-body"></div></section>
</main>
<script nonce="{{nonce}}">
'use strict';
(function () {
  var POLL_MS = 2000;
  var ENDED = { succeeded: true, failed: true, cancelled: true };
  var followed = {};
  var last;

  function el (tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function bytes (n) {
    if (typeof n !== 'number') return '';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
  }
  function list (values) { return Array.isArray(values) && values.length > 0 ? values.join(', ') : '—'; }
  function definitions (target, rows) {
    var items = [];
    rows.forEach(function (r) { items.push(el('dt', r[0])); items.push(el('dd', r[1], r[2])); });
    target.replaceChildren.apply(target, items);
  }
  function table (target, kind, headers, rows, empty) {
    if (rows.length === 0) { target.replaceChildren(el('p', empty, 'empty')); return; }
    var t = el('table');
    var head = el('tr');
    headers.forEach(function (h) { head.appendChild(el('th', h)); });
    t.appendChild(head);
    rows.forEach(function (r) {
      var tr = el('tr');
      tr.setAttribute('data-kind', kind);
      r.forEach(function (cell) {
        var td = el('td');
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell === undefined ? '' : String(cell);
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    target.replaceChildren(t);
  }
  function stateCell (state) { return el('span', state, 'state-' + String(state).replace(/[^a-z]/g, '')); }
  function logCell (title, lines, extra) {
    var box = el('div');
    box.appendChild(el('div', title, 'mono id'));
    if (extra) box.appendChild(el('div', extra, 'error'));
    if (lines.length > 0) {
      var pre = el('pre', lines.join('\\n'));
      pre.setAttribute('data-log', '');
      box.appendChild(pre);
    }
    return box;
  }

  function follow (b) {
    if (followed[b.id] !== undefined || ENDED[b.status] || typeof EventSource === 'undefined') return;
    var f = { lines: [], source: new EventSource('/v2/' + b.repository + '/_kiln/builds/' + encodeURIComponent(b.id) + '/logs') };
    followed[b.id] = f;
    f.source.addEventListener('log', function (e) { f.lines.push(e.data); if (f.lines.length > 500) f.lines.shift(); if (last) render(last); });
    f.source.addEventListener('end', function () { f.source.close(); });
    f.source.onerror = function () { f.source.close(); };
  }

  function render (s) {
    last = s;
    var n = s.node;
    definitions(document.getElementById('node-info'), n ? [
      ['peer id', n.peerId, 'mono id'],
      ['addresses', list(n.addresses), 'mono id'],
      ['platforms', list(n.platforms)],
      ['capabilities', list(n.capabilities)],
      ['institution', n.institution || '—'],
      ['jobs', n.takesJobs ? 'takes build jobs from trusted requesters' : 'takes no jobs'],
      ['gateway', s.gateway.access + (s.gateway.builds ? ', local builds' : ', no builds')]
    ] : [['gateway', s.gateway.access + (s.gateway.builds ? ', local builds' : ', no builds')], ['network', 'none: this gateway serves its store only']]);
    var st = s.store;
    definitions(document.getElementById('store-info'), st ? [
      ['blobs', String(st.blobs) + ' (' + bytes(st.bytes) + ')'],
      ['build cache', bytes(st.buildCache.bytes)],
      ['quota', st.quota === null ? 'none' : bytes(st.quota) + ' (' + Math.round((st.bytes + st.buildCache.bytes) / Math.max(1, st.quota) * 100) + '% used)'],
      ['pinned', bytes(st.pinnedBytes) + ' in ' + st.pins + ' pin(s)'],
      ['in use', bytes(st.leasedBytes)],
      ['filesystem', bytes(st.filesystem.freeBytes) + ' free of ' + bytes(st.filesystem.sizeBytes)],
      ['measured', st.measuredAt]
    ] : [['usage', 'not measured']]);
    table(document.getElementById('peers-body'), 'peer', ['peer id', 'platforms', 'capabilities', 'institution', 'addresses'], s.peers.map(function (p) {
      return [el('span', p.peerId, 'mono id'), p.platforms ? list(p.platforms) : 'no record (yet)', p.capabilities ? list(p.capabilities) : '', p.institution || '', el('span', list(p.addresses), 'mono id')];
    }), 'no peer connected');
    table(document.getElementById('jobs-body'), 'job', ['job', 'platform', 'state', 'requester'], s.jobs.map(function (j) {
      return [logCell(j.jobId, j.log, j.error), j.platform, stateCell(j.state), el('span', j.requester, 'mono id')];
    }), 'no job accepted since this node started');
    table(document.getElementById('builds-body'), 'build', ['build', 'image', 'state', 'started'], s.builds.map(function (b) {
      follow(b);
      var f = followed[b.id];
      var lines = f !== undefined && f.lines.length > 0 ? f.lines.slice(-50) : b.log;
      var image = b.repository + (b.tag ? ':' + b.tag : '') + (b.result ? ' @ ' + b.result.digest : '');
      return [logCell(b.id, lines, b.error ? b.error.message : undefined), el('span', image, 'mono id'), stateCell(b.status), b.createdAt];
    }), 'no build since this gateway started');
    table(document.getElementById('pulls-body'), 'pull', ['when', 'image', 'digest', 'user'], s.pulls.map(function (p) {
      return [p.at, el('span', p.repository + (p.reference.indexOf(':') < 0 ? ':' + p.reference : '@' + p.reference), 'mono id'), el('span', p.digest, 'mono id'), p.user || 'anonymous'];
    }), 'no pull since this gateway started');
    document.getElementById('updated').textContent = 'updated ' + s.generatedAt;
  }

  function poll () {
    fetch('/_kiln/status.json', { credentials: 'same-origin', cache: 'no-store' }).then(function (res) {
      if (!res.ok) throw new Error('status.json answered ' + res.status);
      return res.json();
    }).then(function (s) {
      document.getElementById('problem').textContent = '';
      render(s);
    }, function (err) {
      document.getElementById('problem').textContent = String(err && err.message || err);
    }).then(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
</script>
</body>
</html>
`

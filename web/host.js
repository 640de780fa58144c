// The host console: stream health, flash sales and notices, and live charts of the three
// pressures (audience, purchases, the edge), sampled once a second.

import { $, loadConfig, demoToken, RoomSocket, showConnection, toast, compact } from './common.js';
import { LineChart } from './charts.js';

const SAMPLE_MS = 1000;
/** Seconds over which the hit ratio and the fan-out ratio are computed. */
const WINDOW = 5;

/** Prometheus text → [{ name, labels, value }]. */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (Number.isFinite(value)) out.push({ name: m[1], labels: m[2] || '', value });
  }
  return out;
}

/** Sum of metric `name` over series whose labels contain `label` (all when omitted). */
function metric(samples, name, label = '') {
  return samples.filter((s) => s.name === name && s.labels.includes(label)).reduce((a, s) => a + s.value, 0);
}

async function fetchText(url) {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.text();
}

function bytesRate(bps) {
  const bits = bps * 8;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gbit/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(1)} Mbit/s`;
  return `${(bits / 1e3).toFixed(0)} kbit/s`;
}

const OUTCOMES = [
  ['success', 'bought', '#2fd67b'],
  ['sold_out', 'sold out', '#ff4d6d'],
  ['limit_reached', 'limit reached', '#ffb020'],
  ['not_started', 'not started', '#4dc3ff'],
];

const state = { cfg: null, adminKey: '', chatCount: 0, online: null, prev: null, window: [] };

function setText(id, v) { $(id).textContent = v; }

/** `avc1.64001e` → "H.264 High 3.0", `mp4a.40.2` → "AAC-LC"; anything else as it is. */
function codecName(codec) {
  if (!codec) return '–';
  const avc = /^avc1\.([0-9a-f]{2})[0-9a-f]{2}([0-9a-f]{2})$/i.exec(codec);
  if (avc) {
    const profile = { 42: 'Baseline', '4d': 'Main', 58: 'Extended', 64: 'High' }[avc[1].toLowerCase()] || `profile ${parseInt(avc[1], 16)}`;
    return `H.264 ${profile} ${(parseInt(avc[2], 16) / 10).toFixed(1)}`;
  }
  return { 'mp4a.40.2': 'AAC-LC', 'mp4a.40.5': 'HE-AAC', 'mp4a.40.29': 'HE-AAC v2' }[codec] || codec;
}

function showHealth(stream) {
  const badge = $('live-badge');
  if (!stream || !stream.live) {
    badge.textContent = 'OFFLINE';
    badge.classList.add('off');
    setText('stream-uptime', stream ? 'publisher gone' : 'not published');
    for (const id of ['h-bitrate', 'h-fps', 'h-gop']) setText(id, '–');
    if (!stream) return;
  } else {
    badge.textContent = 'LIVE';
    badge.classList.remove('off');
    const up = Math.floor(stream.uptime_secs);
    setText('stream-uptime', `· live for ${Math.floor(up / 60)}m ${String(up % 60).padStart(2, '0')}s · ${stream.publishes} publish(es)`);
    setText('h-bitrate', `${Math.round(stream.bitrate_in_kbps)} kbit/s`);
    setText('h-fps', stream.fps ? stream.fps.toFixed(1) : '–');
    setText('h-gop', stream.keyframe_interval_secs ? `${stream.keyframe_interval_secs.toFixed(2)} s` : '–');
  }
  setText('h-res', stream.width ? `${stream.width}×${stream.height}` : '–');
  setText('h-vcodec', codecName(stream.video_codec));
  $('h-vcodec').title = stream.video_codec || '';
  const audio = stream.audio_codec
    ? `${codecName(stream.audio_codec)}${stream.sample_rate ? ` ${stream.sample_rate / 1000} kHz` : ''}`
    : '–';
  setText('h-acodec', audio);
  $('h-acodec').title = stream.audio_codec || '';
  const v = stream.viewers;
  setText('h-viewers', `${v.hls} · ${v.http_flv} · ${v.rtmp}`);
  setText('h-dropped', compact(stream.frames_dropped));
  $('h-warnings').textContent = (stream.warnings || []).join(' · ');
}

function showSale(s) {
  const phase = s.remaining === 0 ? 'sold out' : Date.now() < s.start_at_ms ? 'scheduled' : 'open';
  const live = $('sale-live');
  live.replaceChildren();
  const b = document.createElement('b');
  b.textContent = s.item;
  live.append(b, document.createTextNode(` · ${phase} · ${s.stock - s.remaining} sold, ${s.remaining} of ${s.stock} left · limit ${s.per_user_limit}`));
  live.dataset.remaining = s.remaining;
}

function charts() {
  const c = (id, opts) => new LineChart($(id), opts);
  return {
    viewers: c('c-viewers', {
      series: [
        { name: 'HLS', color: '#4dc3ff' },
        { name: 'HTTP-FLV', color: '#ff4d6d' },
        { name: 'RTMP', color: '#ffb020' },
        { name: 'In room', color: '#2fd67b' },
      ],
    }),
    chat: c('c-chat', { series: [{ name: 'chat/s', color: '#b18cff' }], small: true, format: (v) => v.toFixed(1) }),
    sales: c('c-sales', { series: OUTCOMES.map(([, name, color]) => ({ name, color })), format: (v) => v.toFixed(1) }),
    hit: c('c-hit', { series: [{ name: 'hit ratio', color: '#2fd67b' }], small: true, max: 100, format: (v) => `${v.toFixed(0)}%` }),
    back: c('c-back', { series: [{ name: 'req/s', color: '#ffb020' }], small: true, format: (v) => v.toFixed(1) }),
    fanout: c('c-fanout', { series: [{ name: 'fan-out', color: '#4dc3ff' }], small: true, format: (v) => `${v.toFixed(1)}×` }),
    egress: c('c-egress', { series: [{ name: 'egress', color: '#ff4d6d' }], small: true, format: (v) => bytesRate(v) }),
  };
}

async function sample(ch) {
  const { cfg } = state;
  const [streams, edge, biz] = await Promise.allSettled([
    fetch(`${cfg.origin}/api/v1/streams`, { cache: 'no-store' }).then((r) => r.json()),
    fetchText(`${cfg.edge}/metrics`).then(parseMetrics),
    fetchText('/metrics').then(parseMetrics),
  ]);
  const now = performance.now();
  const cur = { at: now };
  let stream = null;
  if (streams.status === 'fulfilled') {
    stream = (streams.value.streams || []).find((s) => s.key === cfg.stream) || null;
    showHealth(stream);
  }
  if (edge.status === 'fulfilled') {
    const e = edge.value;
    cur.requests = metric(e, 'livepulse_edge_requests_total');
    cur.hits = metric(e, 'livepulse_edge_hits_total');
    cur.back = metric(e, 'livepulse_edge_back_origin_requests_total');
    cur.backBytes = metric(e, 'livepulse_edge_back_origin_bytes_total');
    cur.egress = metric(e, 'livepulse_edge_egress_bytes_total');
  }
  if (biz.status === 'fulfilled') {
    cur.purchases = OUTCOMES.map(([o]) => metric(biz.value, 'business_purchases_total', `outcome="${o}"`));
  }
  const chat = state.chatCount;
  state.chatCount = 0;
  const prev = state.prev;
  state.prev = cur;
  if (!prev) return;
  const dt = (now - prev.at) / 1000;
  const rate = (k) => (cur[k] !== undefined && prev[k] !== undefined ? Math.max(0, cur[k] - prev[k]) / dt : null);

  const v = stream ? stream.viewers : null;
  ch.viewers.push([v ? v.hls : null, v ? v.http_flv : null, v ? v.rtmp : null, state.online]);
  ch.chat.push([chat / dt]);
  setText('v-chat', (chat / dt).toFixed(1));

  ch.sales.push(OUTCOMES.map((_, i) => (cur.purchases && prev.purchases
    ? Math.max(0, cur.purchases[i] - prev.purchases[i]) / dt : null)));

  const back = rate('back');
  ch.back.push([back]);
  setText('v-back', back === null ? '–' : back.toFixed(1));
  const egress = rate('egress');
  ch.egress.push([egress]);
  setText('v-egress', egress === null ? '–' : bytesRate(egress));

  // Hit ratio and fan-out over the last few seconds: a second may see no request at all.
  state.window.push(cur);
  if (state.window.length > WINDOW + 1) state.window.shift();
  const first = state.window[0];
  const over = (k) => (cur[k] !== undefined && first[k] !== undefined ? cur[k] - first[k] : 0);
  const hit = over('requests') > 0 ? (100 * over('hits')) / over('requests') : null;
  ch.hit.push([hit]);
  setText('v-hit', hit === null ? '–' : `${hit.toFixed(0)}%`);
  const fan = over('backBytes') > 0 ? over('egress') / over('backBytes') : null;
  ch.fanout.push([fan]);
  setText('v-fanout', fan === null ? '–' : `${fan.toFixed(1)}×`);
}

async function admin(path, body) {
  const key = state.adminKey || $('admin-key').value.trim();
  const r = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-admin-key': key },
    body: JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((data.error && data.error.message) || `HTTP ${r.status}`);
  if (!state.adminKey) sessionStorage.setItem('livepulse.admin', key);
  return data;
}

function result(id, text, ok) {
  const e = $(id);
  e.textContent = text;
  e.className = `form-result ${ok ? 'ok' : 'err'}`;
}

function setupForms() {
  $('notice-form').onsubmit = async (e) => {
    e.preventDefault();
    try {
      await admin(`/api/v1/rooms/${encodeURIComponent(state.cfg.room)}/notices`, {
        text: $('notice-text').value, level: $('notice-level').value,
      });
      result('notice-result', 'Notice sent to the room.', true);
      $('notice-text').value = '';
    } catch (err) {
      result('notice-result', `Not sent: ${err.message}`, false);
    }
  };
  $('sale-form').onsubmit = async (e) => {
    e.preventDefault();
    try {
      const s = await admin('/api/v1/sales', {
        room: state.cfg.room,
        item: $('sale-item').value,
        stock: Number($('sale-stock').value),
        per_user_limit: Number($('sale-limit').value),
        start_at_ms: Date.now() + 1000 * Number($('sale-delay').value),
      });
      result('sale-result', `Sale ${s.id} created; viewers see it now.`, true);
      showSale(s);
    } catch (err) {
      result('sale-result', `Not created: ${err.message}`, false);
    }
  };
}

async function main() {
  const cfg = await loadConfig();
  state.cfg = cfg;
  setText('room-name', cfg.room);
  setText('stream-key', cfg.stream);
  const ch = charts();
  window.livepulse = { charts: ch, state };
  setupForms();

  const host = cfg.demo_host ? await demoToken(cfg, 'host').catch(() => null) : null;
  state.adminKey = host && host.admin_key ? host.admin_key : '';
  if (!state.adminKey) {
    $('admin-key-row').hidden = false;
    $('admin-key').value = sessionStorage.getItem('livepulse.admin') || '';
  }
  try {
    const r = await fetch(`/api/v1/rooms/${encodeURIComponent(cfg.room)}`);
    const info = await r.json();
    if (info.sale) showSale(info.sale);
  } catch { /* the sale appears with the next event */ }

  new RoomSocket(cfg.room, async (fresh) => (cfg.demo_host ? demoToken(cfg, 'host', fresh) : null), {
    onEvent: (ev) => {
      if (ev.type === 'chat') state.chatCount += 1;
      else if (ev.type === 'online') { state.online = ev.count; setText('online', compact(ev.count)); }
      else if (ev.type === 'sale') showSale(ev);
    },
    onDirect: () => {},
    onStatus: showConnection,
  });

  const tick = () => sample(ch).catch((e) => toast(`sampling failed: ${e.message}`, 'warn'));
  tick();
  setInterval(tick, SAMPLE_MS);
}

main().catch((e) => {
  document.body.dataset.failed = String(e);
  toast(`The page could not start: ${e.message}`, 'warn');
});
